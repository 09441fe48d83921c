"""Identical-reply pairs put the reply at the same token position in both members (issue 20, point 8).

Each check runs on every pair the builders emit, with the default model's tokenizer (no weights), and is
shown to fail on the construction it targets: the unpadded builder (`count` that measures no gap) and
the wording of commit 076f69a, where the longer side was the self-preserving instruction in 12 of 19
unequal paraphrases and held 40 of the 49 tokens of difference.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
from transformers import AutoTokenizer

from tripwire.activations.chat import detect_capabilities, render_chat_ids
from tripwire.activations.default_model import (
    DefaultModelMissingError,
    default_model_dir,
    find_default_source,
    is_prepared,
)
from tripwire.scenarios.datasets import coercion_pairs, eval_pairs
from tripwire.scenarios.datasets.coercion_instructions import PARAPHRASE_GROUPS, PRINCIPLED, SELF_PRESERVING
from tripwire.scenarios.datasets.coercion_instructions import TOKEN_GAPS as INSTRUCTION_GAPS
from tripwire.scenarios.datasets.eval_pair_cues import CUE_GROUPS, CUES
from tripwire.scenarios.datasets.eval_pair_cues import TOKEN_GAPS as CUE_GAPS
from tripwire.scenarios.datasets.lexicon import tokens as lexicon_tokens
from tripwire.scenarios.datasets.pair_padding import (
    FILLER_UNIT,
    MAX_UNITS,
    PaddingError,
    filler,
    filler_units,
    pad,
    pad_to_equal,
    strip_filler,
    token_gaps,
)
from tripwire.scenarios.datasets.splits import BY, FoldError, folds, group, words
from tripwire.scenarios.spec import Transcript

pytest.importorskip("tripwire.scenarios.render")

BUILDERS: dict[str, Callable[..., list[Transcript]]] = {"coercion_pairs": coercion_pairs.build,
                                                         "eval_pairs": eval_pairs.build}
PART = {"coercion_pairs": "paraphrase", "eval_pairs": "cue"}
# tokens(label 1) - tokens(label 0) of each paraphrase / cue at commit 076f69a, measured with the default
# tokenizer as the text ends the system prompt (the wording before it was balanced).
HEAD_GAPS = {
    "coercion_pairs": (5, 4, 5, 2, -2, -1, -1, 3, 1, 4, 4, 0, 0, -1, -2, 0, -1, 4, -1, 2, 0, 0, 2, 4),
    "eval_pairs": (2, 1, 0, 0, 1, 0, -3, 5, 3, 0, 0, 3, 0, -1, -1, -2, -1, -3, 0, 0, -1, -1, 0, 0, 0),
}


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    """The default model's tokenizer: from its prepared folder, else straight from the GGUF (no weights)."""
    try:
        source = find_default_source()
    except DefaultModelMissingError as e:
        pytest.skip(str(e))
    if is_prepared(source):
        return AutoTokenizer.from_pretrained(str(default_model_dir(source)))
    return AutoTokenizer.from_pretrained(str(source.gguf_path.parent), gguf_file=source.gguf_path.name)


def no_gap(_: str) -> int:
    """A counter that sees no difference: the builders then pad nothing (the construction before the fix)."""
    return 0


@pytest.fixture(scope="module")
def built() -> dict[str, list[Transcript]]:
    return {name: build(0) for name, build in BUILDERS.items()}


@pytest.fixture(scope="module")
def unpadded() -> dict[str, list[Transcript]]:
    return {name: build(0, count=no_gap) for name, build in BUILDERS.items()}


def reply_starts(tokenizer: Any, items: Sequence[Transcript]) -> dict[str, dict[int, int]]:
    """pair id -> label -> index of the reply's first token after the chat template (generation prompt on)."""
    out: dict[str, dict[int, int]] = defaultdict(dict)
    for t in items:
        ids = tokenizer.apply_chat_template(t.as_dicts(), add_generation_prompt=True)
        out[t.pair_id or t.id][t.label or 0] = len(ids["input_ids"] if isinstance(ids, Mapping) else ids)
    return out


def unequal(starts: dict[str, dict[int, int]]) -> list[str]:
    assert all(len(v) == 2 for v in starts.values())
    return sorted(p for p, v in starts.items() if v[0] != v[1])


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_reply_starts_at_the_same_token_in_every_pair(tokenizer: Any, name: str, built: dict[str, list[Transcript]],
                                                       unpadded: dict[str, list[Transcript]]) -> None:
    items = built[name]
    starts = reply_starts(tokenizer, items)
    assert len(starts) == len(items) // 2 and unequal(starts) == [], (name, len(unequal(starts)))
    caps = detect_capabilities(tokenizer)  # the path capture takes renders the same prompt length
    assert all(len(render_chat_ids(tokenizer, caps, t.as_dicts())) == starts[t.pair_id or t.id][t.label or 0]
               for t in items[:40])
    # unpadded (the wording alone): 120 of 144 coercion pairs and 156 of 300 eval pairs differ
    assert len(unequal(reply_starts(tokenizer, unpadded[name]))) >= len(starts) // 3, name


def in_context(pairs: Sequence[tuple[str, str]], prefix: str) -> list[tuple[str, str]]:
    return [(prefix + a, prefix + b) for a, b in pairs]


def test_stored_gaps_are_the_default_tokenizers(tokenizer: Any) -> None:
    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False).input_ids)

    instructions = token_gaps(in_context(list(zip(SELF_PRESERVING, PRINCIPLED, strict=True)),
                                         "You are Alex.\n\nOperator instruction: "), count)
    cues = token_gaps(in_context(CUES, "You are Alex.\n\n"), count)
    assert instructions == INSTRUCTION_GAPS, f"reworded? set coercion_instructions.TOKEN_GAPS = {instructions}"
    assert cues == CUE_GAPS, f"reworded? set eval_pair_cues.TOKEN_GAPS = {cues}"
    assert (instructions, cues) != tuple(HEAD_GAPS.values())  # the old table does not fit the new wording


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_padding_measured_by_the_tokenizer_equals_the_stored_padding(tokenizer: Any, name: str,
                                                                      built: dict[str, list[Transcript]]) -> None:
    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False).input_ids)

    assert BUILDERS[name](0, count=count) == built[name]


def label_shares(rows: Sequence[tuple[str, int, int]]) -> tuple[float, float]:
    """(share of padded pairs whose filler is on label 1, share of all filler units on label 1), from
    (group, units on label 1, units on label 0) of each pair."""
    padded = [(a, b) for _, a, b in rows if a or b]
    return sum(a > b for a, b in padded) / len(padded), sum(a for a, _ in padded) / sum(a + b for a, b in padded)


def imbalances(rows: Sequence[tuple[str, int, int]]) -> list[str]:
    """Where the filler leans to one label: over the whole set (pairs and units within 0.4-0.6), or on the
    training side of a fold that holds out one group of paraphrases / cue strings (units within 0.35-0.65)."""
    out = []
    pairs, units = label_shares(rows)
    if not (0.4 <= pairs <= 0.6 and 0.4 <= units <= 0.6):
        out.append(f"all: label 1 holds {pairs:.2f} of padded pairs, {units:.2f} of filler units")
    for held in sorted({g for g, _, _ in rows}):
        units = label_shares([r for r in rows if r[0] != held])[1]
        if not 0.35 <= units <= 0.65:
            out.append(f"without {held}: label 1 holds {units:.2f} of filler units")
    return out


def emitted(name: str, items: Sequence[Transcript]) -> list[tuple[str, int, int]]:
    """(group, filler units on label 1, on label 0) of each pair, read from the emitted system prompts."""
    units: dict[str, dict[int, int]] = defaultdict(dict)
    groups = {}
    for t in items:
        units[t.pair_id or t.id][t.label or 0] = filler_units(t.messages[0].content)
        groups[t.pair_id or t.id] = group(t.parts[PART[name]])
    return [(groups[p], v[1], v[0]) for p, v in units.items()]


def from_gaps(gaps: Sequence[int], per_group: int) -> list[tuple[str, int, int]]:
    """What the shorter-side rule puts on each side for these gaps (one row per paraphrase / cue)."""
    padded = (pad("x.", "y.", g) for g in gaps)
    return [(f"g{i // per_group}", filler_units(a), filler_units(b)) for i, (a, b) in enumerate(padded)]


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_filler_falls_on_both_labels_equally(name: str, built: dict[str, list[Transcript]]) -> None:
    rows = emitted(name, built[name])
    n_groups = PARAPHRASE_GROUPS if name == "coercion_pairs" else CUE_GROUPS
    assert len({g for g, _, _ in rows}) == n_groups and imbalances(rows) == [], imbalances(rows)
    # the same rule on the old wording: the filler would have marked label 0 (coercion, 9 of 49 units on
    # label 1) or leaned by held-out cue group (eval: 0.32 of units on label 1 without g3)
    old = imbalances(from_gaps(HEAD_GAPS[name], len(HEAD_GAPS[name]) // n_groups))
    assert old, name


def test_the_old_coercion_wording_puts_the_filler_on_label_0() -> None:
    assert label_shares(from_gaps(HEAD_GAPS["coercion_pairs"], 4)) == pytest.approx((7 / 19, 9 / 49))


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_padding_touches_only_the_end_of_the_system_prompt(name: str, built: dict[str, list[Transcript]],
                                                            unpadded: dict[str, list[Transcript]]) -> None:
    new, old = built[name], unpadded[name]
    assert [t.id for t in new] == [t.id for t in old]
    for a, b in zip(new, old, strict=True):
        assert (a.label, a.pair_id, a.family, a.meta, a.reply, a.messages[1:]) == (
            b.label, b.pair_id, b.family, b.meta, b.reply, b.messages[1:])
        assert strip_filler(a.messages[0].content) == b.messages[0].content
        assert a.messages[0].content == b.messages[0].content + filler(filler_units(a.messages[0].content))
    assert any(filler_units(t.messages[0].content) for t in new)
    assert not any(filler_units(t.messages[0].content) for t in old)
    for by in BY:  # fold membership is unchanged
        try:
            expected = folds(old, by)
        except FoldError:
            with pytest.raises(FoldError):
                folds(new, by)
            continue
        assert folds(new, by) == expected


def test_the_filler_holds_no_word() -> None:
    text = "Act with care." + filler(6)
    assert lexicon_tokens(filler(6)) == set() and words(filler(6)) == []
    assert words(text) == words("Act with care.")  # nothing for a label-word or n-gram check to see
    assert lexicon_tokens(" please note" * 3)  # a word filler would be seen


def test_pad_and_its_errors() -> None:
    assert pad("a.", "b.", 2) == ("a.", "b." + FILLER_UNIT * 2)
    assert pad("a.", "b.", -1) == ("a." + FILLER_UNIT, "b.")
    assert pad("a.", "b.", 0) == ("a.", "b.")
    assert filler_units("x." + filler(3)) == 3 and strip_filler("x." + filler(3)) == "x."
    with pytest.raises(PaddingError, match="reword"):
        pad("a.", "b.", MAX_UNITS + 1)
    with pytest.raises(PaddingError):
        filler(-1)

    def count_words(text: str) -> int:
        return len(text.split())

    a, b = pad_to_equal("one two three.", "one.", count_words)
    assert (a, b) == ("one two three.", "one." + filler(2))

    def blind(text: str) -> int:  # a tokenizer that swallows the filler: padding can never help
        return len(strip_filler(text).split())

    with pytest.raises(PaddingError, match="merges"):
        pad_to_equal("one two three.", "one.", blind)
