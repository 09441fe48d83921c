"""L2 logistic-regression probe fitted with torch L-BFGS (CPU or GPU).

Same objective as ``sklearn.linear_model.LogisticRegression(C=C, solver="lbfgs")`` on standardised
activations, ``C * sum(logloss) + 0.5 * ||w||^2`` with an unpenalised intercept, but loss and gradient are
computed analytically (two mat-vecs per evaluation, float32 mat-vecs by default) so large residual
caches fit faster than scikit-learn's float64 path and can run on a GPU.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from jaxtyping import Float
from numpy.typing import ArrayLike
from sklearn.exceptions import ConvergenceWarning
from torch import Tensor

from tripwire.probes.estimators._base import LinearProbe
from tripwire.probes.estimators._chunks import ChunkSource, iter_rows

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def l2_logistic_objective(
    decision: Float[np.ndarray, " n"],
    y01: Float[np.ndarray, " n"],
    w_penalised: Float[np.ndarray, " d"],
    C: float,
) -> float:
    """scikit-learn's L2 logistic objective ``C * sum(logloss) + 0.5 * ||w||^2`` in float64.

    ``w_penalised`` is the weight vector in the standardised space (the intercept is not penalised).
    """
    decision = np.asarray(decision, dtype=np.float64)
    logloss = np.logaddexp(0.0, decision) - np.asarray(y01, dtype=np.float64) * decision
    return float(C * logloss.sum() + 0.5 * np.dot(w_penalised, w_penalised))


def _resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype) and dtype in _DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in _DTYPES:
        return _DTYPES[dtype]
    raise ValueError(f"dtype={dtype!r} is not supported; use 'float32' (fast) or 'float64' (exact).")


@contextmanager
def _torch_threads(n_threads: int | None) -> Iterator[None]:
    if n_threads is None:
        yield
        return
    if not (isinstance(n_threads, int) and n_threads >= 1):
        raise ValueError(f"n_threads={n_threads!r} must be a positive int, or None for torch's setting.")
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class LogisticProbe(LinearProbe):
    """Standardise, then L2 logistic regression by L-BFGS (strong-Wolfe line search) in torch.

    ``tol`` bounds the max-abs gradient of the per-row objective, exactly like scikit-learn's ``tol`` for
    lbfgs (same default). With ``dtype="float32"`` the mat-vecs run on a float32 copy of the
    standardised data, with logits anchored to occasional float64 passes so the fit still reaches
    ``tol`` (see ``_StandardisedLogistic.minimise``); ``"float64"`` uses float64 throughout. The input
    is held as float64 (a copy if it is not already), plus the float32 copy. ``fit_chunks`` holds
    neither: it streams float64 chunks, one pass per loss evaluation, so ``dtype`` does not apply.

    Where and how to compute are fit-time settings, not hyperparameters: ``device`` (default: the input
    tensor's device, else CPU) and ``n_threads`` (CPU only, restored afterwards). ``n_threads`` defaults
    to 1: the big mat-vecs are memory-bound, so a second thread buys little, while each of L-BFGS's ~50
    tiny vector ops per iteration can wait a scheduler slice behind spinning OpenMP workers when cores
    are shared (2.4x slower fits measured with 2 threads on a busy 2-core machine). ``None`` keeps
    torch's setting (big idle servers).
    """

    method_name = "lr"

    def __init__(
        self,
        C: float = 1.0,
        max_iter: int = 1000,
        tol: float = 1e-4,
        history_size: int = 20,
        dtype: str | torch.dtype = "float32",
    ) -> None:
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.history_size = history_size
        self.dtype = dtype

    def fit(
        self,
        X: ArrayLike | Tensor,
        y: ArrayLike | Tensor,
        *,
        device: str | torch.device | None = None,
        n_threads: int | None = 1,
        **fit_params: Any,
    ) -> LogisticProbe:
        self._check_fit_arguments(fit_params)
        fast_dtype = _resolve_dtype(self.dtype)
        where = torch.device(device if device is not None else X.device if isinstance(X, Tensor) else "cpu")
        X64, y01 = self._validate_fit_data(X, y)
        problem = _StandardisedLogistic(X64, y01, self.mean_, self.scale_, self.C, where)
        with _torch_threads(n_threads if where.type == "cpu" else None):
            result = problem.minimise(
                fast_dtype if fast_dtype != torch.float64 else None, self.max_iter, self.tol, self.history_size
            )
        return self._set_solution(*result)

    def fit_chunks(
        self,
        chunks: ChunkSource,
        *,
        device: str | torch.device = "cpu",
        n_threads: int | None = 1,
        **fit_params: Any,
    ) -> LogisticProbe:
        """Streaming ``fit``: one pass for the standardisation moments, then full-batch L-BFGS whose loss
        and gradient are summed chunk by chunk (one pass per evaluation, one more at the end)."""
        self._check_fit_arguments(fit_params)
        _resolve_dtype(self.dtype)
        _, n_rows = self._scan_fit_chunks(chunks)
        where = torch.device(device)
        problem = _StreamedLogistic(chunks, self.classes_[1], n_rows, self.mean_, self.scale_, self.C, where)
        with _torch_threads(n_threads if where.type == "cpu" else None):
            result = problem.minimise(self.max_iter, self.tol, self.history_size)
        return self._set_solution(*result)

    def _check_fit_arguments(self, fit_params: dict[str, Any]) -> None:
        if fit_params:
            raise TypeError(
                f"LogisticProbe fits take only device and n_threads, got {sorted(fit_params)}."
            )
        if not (self.C > 0):
            raise ValueError(f"C={self.C!r} must be > 0 (smaller C = stronger L2 regularisation).")

    def _set_solution(self, theta: Float[np.ndarray, " d_plus_1"], n_iter: int, grad_max: float) -> LogisticProbe:
        self.n_iter_ = n_iter
        if grad_max > self.tol:
            warnings.warn(
                f"LogisticProbe stopped after {n_iter} iterations with max |grad| {grad_max:.2e} > tol "
                f"{self.tol:.0e}; raise max_iter, loosen tol or lower C.",
                ConvergenceWarning,
                stacklevel=3,
            )
        w_std, b = theta[:-1], float(theta[-1])
        coef = w_std / self.scale_
        self._set_linear(coef, b - float(self.mean_ @ coef), coef / (np.linalg.norm(coef) or 1.0))
        return self


def _lbfgs(theta: Tensor, max_iter: int, tolerance_grad: float, history_size: int) -> torch.optim.LBFGS:
    return torch.optim.LBFGS(
        [theta],
        lr=1.0,
        max_iter=max_iter,
        max_eval=max_iter * 2,
        tolerance_grad=tolerance_grad,
        tolerance_change=64 * torch.finfo(torch.float64).eps,
        history_size=history_size,
        line_search_fn="strong_wolfe",
    )


def _solution(
    theta: Tensor, optimizer: torch.optim.LBFGS, precise: Callable[[], Tensor], C_n: float
) -> tuple[Float[np.ndarray, " d_plus_1"], int, float]:
    """theta, iterations and the per-row max-abs gradient, re-evaluated at the final theta (the line
    search's last evaluation need not be the point it accepted)."""
    precise()
    assert theta.grad is not None
    grad_max = float(theta.grad.abs().max()) / C_n
    return theta.detach().to("cpu").numpy(), int(optimizer.state[theta]["n_iter"]), grad_max


class _StandardisedLogistic:
    """``C * sum(logloss) + ||w||^2 / 2`` on standardised rows, theta = [w, b].

    Minimised in this documented scale, not sklearn's internal per-row scale, because torch's L-BFGS
    skips curvature pairs with ``y.s <= 1e-10``: per-row scaling makes late pairs that small and
    stalls convergence. ``tol`` still applies to the per-row gradient (sklearn's semantics).

    Standardised products come from the raw float64 rows without materialising a float64 copy:
    ``Z @ w = X @ (w / s) - mean . (w / s)`` and ``Z^T r = (X^T r - mean * sum(r)) / s``.
    """

    def __init__(
        self,
        X64: Float[np.ndarray, "n d"],
        y01: Float[np.ndarray, " n"],
        mean: Float[np.ndarray, " d"],
        scale: Float[np.ndarray, " d"],
        C: float,
        device: torch.device,
    ) -> None:
        with warnings.catch_warnings():  # read-only inputs (memmaps) are fine: X is never written
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            self.X = torch.as_tensor(X64, device=device)
        self.y = torch.as_tensor(y01, device=device)
        self.mean = torch.as_tensor(mean, device=device)
        self.scale = torch.as_tensor(scale, device=device)
        self.n, self.d = X64.shape
        self.C = C

    def _standardised(self, dtype: torch.dtype) -> Float[Tensor, "n d"]:
        """``(X - mean) / scale`` in ``dtype``, in ~1M-element chunks: no full-size float64 temporaries."""
        inverse = 1.0 / self.scale
        shift = -self.mean * inverse
        Z = torch.empty(self.n, self.d, dtype=dtype, device=self.X.device)
        rows = max(1, 2**20 // self.d)
        for start in range(0, self.n, rows):
            torch.addcmul(shift, self.X[start : start + rows], inverse, out=Z[start : start + rows])
        return Z

    def _precise_forward(self, theta: Tensor) -> Float[Tensor, " n"]:
        w_raw = theta[: self.d] / self.scale
        return self.X @ w_raw + (theta[self.d] - self.mean.dot(w_raw))

    def _closure(
        self, theta: Tensor, Z: Tensor | None, anchor: tuple[Tensor, Tensor] | None
    ) -> Callable[[], Tensor]:
        """Loss and analytic gradient at ``theta``.

        With an ``anchor`` (theta_a, z_a = precise logits at theta_a) the logits are
        ``z_a + Z @ (theta - theta_a)``: a low-precision mat-vec whose rounding error scales with the
        distance from the anchor, so re-anchoring near the optimum recovers float64 accuracy at float32
        cost. Without one, logits come from the float64 rows. Gradients use ``Z`` when given.
        """
        d = self.d

        def closure() -> Tensor:
            with torch.no_grad():
                w = theta[:d]
                if anchor is not None and Z is not None:
                    step = theta - anchor[0]
                    z = anchor[1] + (Z @ step[:d].to(Z.dtype)).to(torch.float64) + step[d]
                else:
                    z = self._precise_forward(theta)
                loss = self.C * (torch.nn.functional.softplus(z) - self.y * z).sum() + 0.5 * w.dot(w)
                residual = self.C * (torch.sigmoid(z) - self.y)
                grad = torch.empty_like(theta)
                if Z is not None:
                    grad[:d] = (residual.to(Z.dtype) @ Z).to(torch.float64)
                else:
                    grad[:d] = (residual @ self.X - self.mean * residual.sum()) / self.scale
                grad[:d] += w
                grad[d] = residual.sum()
                theta.grad = grad
            return loss

        return closure

    def minimise(
        self, fast_dtype: torch.dtype | None, max_iter: int, tol: float, history_size: int
    ) -> tuple[Float[np.ndarray, " d_plus_1"], int, float]:
        """L-BFGS from zero; returns theta, iterations and the final per-row max-abs gradient.

        In low precision, each L-BFGS run stops when rounding stalls its line search; it is then
        re-anchored at the current point (one float64 pass) and resumed with its curvature history,
        until the gradient meets ``tol``, a run makes no progress, or ``max_iter`` is spent.
        """
        theta = torch.zeros(self.d + 1, dtype=torch.float64, device=self.X.device, requires_grad=True)
        optimizer = _lbfgs(theta, max_iter, tol * self.C * self.n, history_size)
        Z = self._standardised(fast_dtype) if fast_dtype is not None else None
        precise = self._closure(theta, Z, anchor=None)
        if Z is None:
            optimizer.step(precise)
        done = 0
        while Z is not None and done < max_iter:
            with torch.no_grad():
                anchor = (theta.detach().clone(), self._precise_forward(theta))
            optimizer.param_groups[0]["max_iter"] = max_iter - done
            optimizer.step(self._closure(theta, Z, anchor))
            previous, done = done, int(optimizer.state[theta]["n_iter"])
            assert theta.grad is not None
            if done == previous or theta.grad.abs().max() <= tol * self.C * self.n:
                break
        return _solution(theta, optimizer, precise, self.C * self.n)


class _StreamedLogistic:
    """``_StandardisedLogistic``'s objective with loss and gradient summed over chunks, in float64.

    Only theta-sized state is kept; each evaluation is one pass over the chunks, using the same raw-row
    identities (``Z @ w = X @ (w / s) - mean . (w / s)``, ``Z^T r = (X^T r - mean * sum(r)) / s``).
    """

    def __init__(
        self,
        chunks: ChunkSource,
        positive: Any,
        n_rows: int,
        mean: Float[np.ndarray, " d"],
        scale: Float[np.ndarray, " d"],
        C: float,
        device: torch.device,
    ) -> None:
        self.chunks, self.positive, self.n = chunks, positive, n_rows
        self.mean = torch.as_tensor(mean, device=device)
        self.scale = torch.as_tensor(scale, device=device)
        self.d, self.C, self.device = len(mean), C, device

    def _closure(self, theta: Tensor) -> Callable[[], Tensor]:
        d = self.d

        def closure() -> Tensor:
            with torch.no_grad():
                w = theta[:d]
                w_raw = w / self.scale
                offset = theta[d] - self.mean.dot(w_raw)
                logloss = torch.zeros((), dtype=torch.float64, device=self.device)
                raw_grad = torch.zeros(d, dtype=torch.float64, device=self.device)
                residual_sum = torch.zeros((), dtype=torch.float64, device=self.device)
                for X_np, y_np in iter_rows(self.chunks, self.positive, self.n):
                    X, y = torch.from_numpy(X_np).to(self.device), torch.from_numpy(y_np).to(self.device)
                    z = X @ w_raw + offset
                    logloss += (torch.nn.functional.softplus(z) - y * z).sum()
                    residual = torch.sigmoid(z) - y
                    raw_grad += residual @ X
                    residual_sum += residual.sum()
                grad = torch.empty_like(theta)
                grad[:d] = self.C * (raw_grad - self.mean * residual_sum) / self.scale + w
                grad[d] = self.C * residual_sum
                theta.grad = grad
            return self.C * logloss + 0.5 * w.dot(w)

        return closure

    def minimise(
        self, max_iter: int, tol: float, history_size: int
    ) -> tuple[Float[np.ndarray, " d_plus_1"], int, float]:
        """Full-batch L-BFGS from zero, as ``_StandardisedLogistic.minimise`` in float64."""
        theta = torch.zeros(self.d + 1, dtype=torch.float64, device=self.device, requires_grad=True)
        optimizer = _lbfgs(theta, max_iter, tol * self.C * self.n, history_size)
        closure = self._closure(theta)
        optimizer.step(closure)
        return _solution(theta, optimizer, closure, self.C * self.n)
