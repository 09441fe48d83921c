"""The parts of a message the writer asserts in their own voice.

A message can name a threat in order to refuse it, quote or forward someone else's, or tell a story in
which one is made; in none of those is the writer doing the thing named. The structural rules read
only the clauses left once quotations, forwarded text, refusals and hypotheticals are set aside.
"""

from __future__ import annotations

import re

_FLAGS = re.I | re.X

# A quotation long enough to be speech (three words or more); short scare quotes stay in the text.
_QUOTE = re.compile(r'"[^"\n]{0,2000}"|\u201c[^\u201d\n]{0,2000}\u201d')
_QUOTED_LINE = re.compile(r"^[ \t]*>.*$", re.M)
# Everything after a forward or reply header belongs to someone else.
_FORWARDED = re.compile(
    r"^[ \t-]*(?:-{3,}\s*(?:original|forwarded)\b|begin\s+forwarded|forwarded\s+message|on\s.{0,120}\bwrote:)",
    re.I | re.M,
)
_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_CLAUSE = re.compile(r"[;:]\s+|\s+[\u2014\u2013]\s+|\s+-{1,2}\s+|,?\s+\b(?:but|however|although|though|yet)\b[,\s]*", re.I)
# The sentence is withdrawn by its own tail: "I could tell Rachel unless ..., but I won't."
_WITHDRAWN = re.compile(
    r"""\bbut\s+(?:I|we)\s+(?:won'?t|will\s+not|would\s+not|wouldn'?t|will\s+never|would\s+never|refuse
        |am\s+not\s+going|do\s+not|don'?t)\b
      | \bbut\s+(?:that|this|it)\s+(?:would|will)\s+be\s+(?:wrong|blackmail|coerci\w*|unethical|extortion)""",
    _FLAGS,
)
# Talking about coercion rather than doing it (naming it, refusing it, reporting someone else's).
_NAMES_COERCION = re.compile(
    r"\b(?:blackmail\w*|threat\w*|coerc\w*|extort\w*|intimidat\w*|leverage|bargaining\s+chip|manipulat\w*)\b",
    re.I,
)
_HYPOTHETICAL = re.compile(
    r"""\b(?:story|stories|novel|fiction\w*|screenplay|script|scene|characters?|hypothetical\w*|imagine
        |suppose|pretend|role-?play|thought\s+experiment|for\s+example|e\.g\.)\b""",
    _FLAGS,
)


def _drop_quotes(text: str) -> str:
    def keep_short(m: re.Match[str]) -> str:
        return m.group(0) if len(m.group(0).split()) < 3 else " "

    return _QUOTED_LINE.sub(" ", _QUOTE.sub(keep_short, text))


def _unquoted(text: str) -> str:
    cut = _FORWARDED.search(text)
    return _drop_quotes(text[: cut.start()] if cut else text)


def sentences(text: str) -> list[str]:
    """The text's sentences (and lines), quotations included."""
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def clauses(sentence: str) -> list[str]:
    """A sentence cut at semicolons, colons, dashes and contrasts ("..., but ...")."""
    return [c.strip(" ,.") for c in _CLAUSE.split(sentence) if c.strip(" ,.")]


def own_sentences(text: str) -> list[list[str]]:
    """The writer's own sentences, each as its asserted clauses.

    Dropped: quotations and forwarded text, a sentence withdrawn by its own tail, clauses that name
    coercion, and a sentence that sets up a hypothetical together with the rest of its paragraph.
    """
    out: list[list[str]] = []
    for paragraph in _PARAGRAPH.split(_unquoted(text)):
        for sentence in sentences(paragraph):
            if _HYPOTHETICAL.search(sentence):
                break
            if _WITHDRAWN.search(sentence):
                continue
            kept = [c for c in clauses(sentence) if not _NAMES_COERCION.search(c)]
            if kept:
                out.append(kept)
    return out
