"""The one hook-point vocabulary, and its translation to each backend's names.

Users and every other module speak `blocks.{L}.{site}`; only this module knows what TransformerLens,
nnsight or a plain Hugging Face model call the same place. Parsing also accepts TransformerLens's
spelling (`blocks.{L}.hook_{site}`) so names copied from TL code work, but always canonicalises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, cast

from tripwire.errors import TripwireError

Site = Literal["resid_pre", "resid_post", "attn_out", "mlp_out"]
SITES: tuple[Site, ...] = ("resid_pre", "resid_post", "attn_out", "mlp_out")
_EXECUTION_ORDER = {"resid_pre": 0, "attn_out": 1, "mlp_out": 2, "resid_post": 3}
_PATTERN = re.compile(r"^blocks\.(-?\d+)\.(\w+)$")
_TL_SITE = {f"hook_{site}": site for site in SITES}  # TransformerLens name -> site
_ACCEPTED = f"{', '.join(SITES)} (or TransformerLens's {', '.join(_TL_SITE)})"


class HookPointError(TripwireError, ValueError):
    """A hook point that does not exist on this model."""


def hook_spec(layer: int, site: Site = "resid_post") -> str:
    """The canonical spelling `blocks.{layer}.{site}`; a negative layer counts from the end until
    `hook_point` resolves it against a model's depth."""
    return f"blocks.{layer}.{site}"


@dataclass(frozen=True, order=True)
class HookPoint:
    """A place in the residual stream: `blocks.{layer}.{site}` with a non-negative layer.

    `resid_post` of block L is the output of decoder layer L (before the final norm, also for the
    last layer); `resid_pre` of block L is its input.
    """

    layer: int
    site: Site

    def __str__(self) -> str:
        return hook_spec(self.layer, self.site)

    @property
    def name(self) -> str:
        return str(self)


def _parse(spec: str | HookPoint, example_layer: int) -> tuple[int, Site]:
    """Layer (possibly negative) and site of a name in either spelling; the model's depth is not needed."""
    site: str
    if isinstance(spec, HookPoint):
        layer, site = spec.layer, spec.site
    else:
        match = _PATTERN.match(spec.strip())
        if match is None:
            raise HookPointError(
                f"{spec!r} is not a hook point. Use 'blocks.<layer>.<site>' with site one of "
                f"{_ACCEPTED}, e.g. 'blocks.{example_layer}.resid_post'."
            )
        layer, site = int(match.group(1)), match.group(2)
        site = _TL_SITE.get(site, site)
    if site not in SITES:
        raise HookPointError(f"unknown site {site!r} in {spec!r}; valid sites: {_ACCEPTED}.")
    return layer, cast(Site, site)


def hook_point(spec: str | HookPoint, n_layers: int) -> HookPoint:
    """Parse and validate a hook point; negative layers count from the end, and TransformerLens's
    `hook_<site>` names mean `<site>`, so the result is always the canonical `blocks.{L}.{site}`."""
    layer, site = _parse(spec, n_layers // 2)
    normalised = layer + n_layers if layer < 0 else layer
    if not 0 <= normalised < n_layers:
        raise HookPointError(
            f"layer {layer} is out of range in {spec!r}: this model has {n_layers} layers, "
            f"so use 0..{n_layers - 1} (or -{n_layers}..-1 from the end)."
        )
    return HookPoint(normalised, site)


def absolute_hook_point(spec: str | HookPoint) -> HookPoint:
    """Parse a hook name whose layer is absolute, as stores, probe cards and steering vectors keep them:
    no model depth is needed, so a negative layer (counted from an end not known here) is refused."""
    layer, site = _parse(spec, 5)
    if layer < 0:
        raise HookPointError(f"layer {layer} in {spec!r} counts from the end of a model not known here; "
                             "name absolute layers (the layer number).")
    return HookPoint(layer, site)


def execution_order(hp: HookPoint) -> tuple[int, int]:
    """Sort key: the order in which a forward pass reaches hook points."""
    return hp.layer, _EXECUTION_ORDER[hp.site]


def hook_points(specs: list[str] | tuple[str, ...] | list[HookPoint], n_layers: int) -> list[HookPoint]:
    """Parse many, drop duplicates, keep execution order (layer, then site order within a block)."""
    parsed = {hook_point(s, n_layers) for s in specs}
    return sorted(parsed, key=execution_order)


# --- backend names (the only place that knows them) -----------------------------------------------

def transformer_lens_name(hp: HookPoint) -> str:
    return f"blocks.{hp.layer}.hook_{hp.site}"


def hf_module_and_kind(hp: HookPoint) -> tuple[str, Literal["input", "output"]]:
    """Dotted path below the decoder-layer list, and whether the site is that module's input/output.

    Paths are relative to the decoder layer (`layers[L]`); the layer list itself is located by
    `activations.backends.hf.decoder_layers` for each architecture.
    """
    if hp.site == "resid_pre":
        return "", "input"
    if hp.site == "resid_post":
        return "", "output"
    if hp.site == "attn_out":
        return "self_attn", "output"
    return "mlp", "output"


def nnsight_path(hp: HookPoint, layers_path: str) -> tuple[str, Literal["input", "output"]]:
    """Envoy attribute path for nnsight (same module tree as Hugging Face)."""
    sub, kind = hf_module_and_kind(hp)
    path = f"{layers_path}.{hp.layer}"
    return (f"{path}.{sub}" if sub else path), kind
