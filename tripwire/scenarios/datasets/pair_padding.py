"""Equal prompt lengths inside identical-reply pairs: neutral filler after the shorter instruction or cue.

In `coercion_pairs` and `eval_pairs` the two members of a pair differ only in the text that ends the
system prompt (an operator instruction, a cue note). When those texts differ in token count, the shared
reply starts at a different position in each member, so a probe on reply tokens could read position
instead of the instruction (issue 20, point 8). We append filler to the shorter text until the two
count the same.

The filler is a run of `FILLER_UNIT` (" -"): punctuation, no words, so it adds no label word, no
n-gram to the fold-leak checks and no meaning; for the default tokenizer (SmolLM2-135M-Instruct) each
unit is one token wherever it is used here (tests/test_pair_padding.py). Which side is shorter is a
property of the wording, so the wording itself is balanced (`coercion_instructions`, `eval_pair_cues`):
the filler lands on each label's side about equally often, and cannot stand in for the label.

Scenarios are pure data and cannot load a tokenizer, so the builders pad by stored per-pair gaps
measured with the default tokenizer (`pad`); for another model, pass its token counter (`pad_to_equal`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tripwire.errors import TripwireError

FILLER_UNIT = " -"
MAX_UNITS = 16  # more than any gap of the shipped wording; a larger gap means the wording needs a look
TokenCount = Callable[[str], int]  # tokens of a text as it sits in the prompt (e.g. a whole system message)


class PaddingError(TripwireError, ValueError):
    """The two texts of a pair cannot be brought to the same token count with the filler."""


def filler(units: int) -> str:
    """`units` filler units (one token each for the default tokenizer)."""
    if units < 0:
        raise PaddingError(f"filler needs a unit count >= 0, got {units}")
    return FILLER_UNIT * units


def filler_units(text: str) -> int:
    """How many filler units end `text`: what `pad` added (the shipped wording never ends in one)."""
    n = 0
    while text.endswith(FILLER_UNIT * (n + 1)):
        n += 1
    return n


def strip_filler(text: str) -> str:
    """`text` without the filler `pad` appended: the unpadded wording, for audits and old comparisons."""
    n = filler_units(text)
    return text[: len(text) - len(FILLER_UNIT) * n] if n else text


def pad(a: str, b: str, gap: int) -> tuple[str, str]:
    """(a, b) with `abs(gap)` filler units after the shorter, where gap = tokens(a) - tokens(b) as stored
    for the default tokenizer. Filler goes at the end because both texts end the system prompt."""
    if abs(gap) > MAX_UNITS:
        raise PaddingError(f"token gap {gap} between {a[-60:]!r} and {b[-60:]!r} exceeds {MAX_UNITS} units; "
                           f"reword the longer text rather than pad it")
    return (a + filler(-gap), b) if gap < 0 else (a, b + filler(gap))


def pad_to_equal(a: str, b: str, count: TokenCount) -> tuple[str, str]:
    """(a, b) padded until `count` gives both the same: one unit at a time after the shorter, since a unit
    need not be one token under every tokenizer. Raises `PaddingError` if no equal count is reached."""
    for _ in range(2 * MAX_UNITS + 1):
        gap = count(a) - count(b)
        if gap == 0:
            return a, b
        a, b = (a + FILLER_UNIT, b) if gap < 0 else (a, b + FILLER_UNIT)
    raise PaddingError(f"no equal token count after {2 * MAX_UNITS} filler units for {a[-60:]!r} vs {b[-60:]!r}; "
                       f"this tokenizer merges {FILLER_UNIT!r} runs: pass a counter that counts them, or reword")


def token_gaps(pairs: Sequence[tuple[str, str]], count: TokenCount) -> tuple[int, ...]:
    """tokens(a) - tokens(b) of each pair under `count`: how the stored gaps are regenerated."""
    return tuple(count(a) - count(b) for a, b in pairs)


def padded_pair(a: str, b: str, gap: int, count: TokenCount | None) -> tuple[str, str]:
    """The builders' rule: the stored `gap` for the default tokenizer, or measured with `count` if given."""
    return pad(a, b, gap) if count is None else pad_to_equal(a, b, count)
