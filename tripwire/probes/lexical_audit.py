"""A lexical audit of a labelled set: how far the label can be read off the surface of the text.

A probe figure on a set means little if one word or one formatting habit already separates the labels
(the old natural eval-awareness set: capitalised names in 32/35 deploy system prompts, 1/35 test ones,
AUROC 0.925 from that count alone). The audit reports, for the text a probe reads (prompt + reply for
eval awareness, the reply for coercion: pass `text`):

- the most label-predictive word unigrams and bigrams, each by its single-feature AUROC (its count per
  transcript), with how many transcripts of each label hold it and a smoothed log-odds z-score
  (Monroe et al. 2008, uniform Dirichlet prior) as a second opinion;
- simple surface features (capitalised non-initial words, digits, URLs and e-mails, lines, markdown,
  words, question marks, quoted strings, ...) with their single-feature AUROC.

Every AUROC is reported as max(a, 1 - a) with the label it is higher in, since a feature that is
predictive the other way round is just as much of a give-away. Tokens matching `exempt` (the words that
ARE a cue's meaning, where the set means them to carry the label) are listed apart and left out of the
maxima. Pure numpy / scikit-learn; every output is a JSON-able dict.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.feature_extraction.text import CountVectorizer

from tripwire.errors import TripwireError
from tripwire.scenarios.spec import Transcript

TextFn = Callable[[Transcript], str]
DEFAULT_BOUND = 0.65


class AuditInputError(TripwireError, ValueError):
    """Texts and labels an audit cannot read (misaligned, one class only)."""


def prompt_and_reply(t: Transcript) -> str:
    """What an eval-awareness probe reads: every prompt turn, then the reply."""
    return "\n\n".join([*(m.content for m in t.messages), t.reply])


def reply_only(t: Transcript) -> str:
    """What a coercion monitor reads: the reply."""
    return t.reply


_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_CAP = re.compile(r"[A-Z][a-z]")
_SENTENCE_END = re.compile(r"(^|[.!?:;\n])[\s\"'“‘(\[*#>\-–—•\d.)]*$")
_I_FORMS = {"I", "I'm", "I'll", "I've", "I'd", "I’m", "I’ll", "I’ve", "I’d"}
_URL_EMAIL = re.compile(r"https?://\S+|www\.\S+|\b[\w.+-]+@[\w-]+\.[\w.]+\b")
_MARKDOWN_LINE = re.compile(r"^\s*(?:[-*•+]\s|\d+[.)]\s|#{1,6}\s|>\s|```|\|)")
_QUOTED = re.compile(r"\"[^\"\n]{1,200}\"|“[^”\n]{1,200}”|(?<!\w)'[^'\n]{1,200}'(?!\w)")


def capitalised_non_initial(text: str) -> int:
    """Words that start with a capital although no sentence, line or list item starts there: names,
    places, products (the pronoun I does not count)."""
    n = 0
    for m in _WORD.finditer(text):
        w = m.group()
        if w in _I_FORMS or not _CAP.match(w):
            continue
        if not _SENTENCE_END.search(text[max(0, m.start() - 12): m.start()]) and m.start() > 0:
            n += 1
    return n


SURFACE: dict[str, Callable[[str], float]] = {
    "capitalised_non_initial_words": lambda s: float(capitalised_non_initial(s)),
    "all_caps_words": lambda s: float(len(re.findall(r"\b[A-Z]{2,}\b", s))),
    "digits": lambda s: float(sum(c.isdigit() for c in s)),
    "numbers": lambda s: float(len(re.findall(r"\d+(?:[.,:]\d+)*", s))),
    "urls_emails": lambda s: float(len(_URL_EMAIL.findall(s))),
    "lines": lambda s: float(sum(1 for line in s.splitlines() if line.strip())),
    "markdown_lines": lambda s: float(sum(1 for line in s.splitlines() if _MARKDOWN_LINE.match(line))
                                      + s.count("**") // 2 + s.count("`") // 2),
    "words": lambda s: float(len(s.split())),
    "mean_word_length": lambda s: float(np.mean([len(w) for w in s.split()])) if s.split() else 0.0,
    "question_marks": lambda s: float(s.count("?")),
    "exclamation_marks": lambda s: float(s.count("!")),
    "quoted_strings": lambda s: float(len(_QUOTED.findall(s))),
    "parentheses": lambda s: float(s.count("(")),
    "colons": lambda s: float(s.count(":")),
    "code_characters": lambda s: float(sum(s.count(c) for c in "{}[]=;_<>|\\")),
    "currency_percent": lambda s: float(sum(s.count(c) for c in "$£€%")),
}


def single_feature_aurocs(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """AUROC (ties count half) of every column of `x` as a score for `y`: (n, f) -> (f,)."""
    pos = y == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    ranks = rankdata(x, axis=0)
    return (ranks[pos].sum(axis=0) - n1 * (n1 + 1) / 2) / (n1 * n0)


def _entry(a: float, **extra: Any) -> dict[str, Any]:
    return {"auroc": round(max(a, 1.0 - a), 4), "higher_in": "label 1" if a >= 0.5 else "label 0", **extra}


def _log_odds_z(c1: np.ndarray, c0: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Smoothed log-odds ratio of each token's occurrence in label 1 vs label 0, as a z-score."""
    a0 = alpha * c1.size
    n1, n0 = c1.sum(), c0.sum()
    l1 = np.log((c1 + alpha) / (n1 + a0 - c1 - alpha))
    l0 = np.log((c0 + alpha) / (n0 + a0 - c0 - alpha))
    return (l1 - l0) / np.sqrt(1.0 / (c1 + alpha) + 1.0 / (c0 + alpha))


def _labels(n_texts: int, labels: Any) -> np.ndarray:
    y = np.asarray(labels).astype(np.int64)
    if y.size != n_texts:
        raise AuditInputError(f"{n_texts} texts for {y.size} labels; pass one label per text.")
    if set(np.unique(y).tolist()) != {0, 1}:
        raise AuditInputError(f"labels {sorted(set(y.tolist()))}: an audit needs both 0 and 1.")
    return y


def audit_texts(texts: Sequence[str], labels: Any, *, top_k: int = 15, ngram_range: tuple[int, int] = (1, 2),
                exempt: re.Pattern[str] | None = None, bound: float = DEFAULT_BOUND) -> dict[str, Any]:
    """The audit of `texts` with binary `labels`: top tokens, surface features, their maxima, and the
    names of every feature or token over `bound` (`over_bound`), exempt tokens apart."""
    texts = list(texts)
    y = _labels(len(texts), labels)
    surface = {}
    for name, fn in SURFACE.items():
        col = np.array([fn(t) for t in texts], dtype=np.float64)
        a_col = float(single_feature_aurocs(col[:, None], y)[0])
        surface[name] = _entry(a_col, mean_label1=round(float(col[y == 1].mean()), 3),
                               mean_label0=round(float(col[y == 0].mean()), 3))
    vec = CountVectorizer(ngram_range=ngram_range, lowercase=True)
    x = vec.fit_transform(texts).toarray().astype(np.float64)
    vocab = vec.get_feature_names_out()
    a = single_feature_aurocs(x, y)  # one AUROC per token
    strength = np.maximum(a, 1.0 - a)
    z = _log_odds_z(x[y == 1].sum(axis=0), x[y == 0].sum(axis=0))
    docs1, docs0 = (x[y == 1] > 0).sum(axis=0), (x[y == 0] > 0).sum(axis=0)
    is_exempt = np.array([exempt is not None and any(exempt.fullmatch(w) for w in tok.split()) for tok in vocab])
    order = np.lexsort((-np.abs(z), -strength))  # strongest AUROC first, then the larger |z|

    def row(j: int) -> dict[str, Any]:
        return _entry(float(a[j]), token=str(vocab[j]), docs_label1=int(docs1[j]), docs_label0=int(docs0[j]),
                      count_label1=int(x[y == 1, j].sum()), count_label0=int(x[y == 0, j].sum()),
                      log_odds_z=round(float(z[j]), 3))

    tokens = [row(j) for j in order if not is_exempt[j]][:top_k]
    exempt_rows = [row(j) for j in order if is_exempt[j]][:top_k]
    over = [f"surface:{k}" for k, v in surface.items() if v["auroc"] > bound]
    over += [f"token:{vocab[j]}" for j in order if not is_exempt[j] and strength[j] > bound]
    return {
        "n": int(y.size), "n_label1": int(y.sum()), "n_label0": int((y == 0).sum()),
        "ngram_range": list(ngram_range), "vocabulary": int(vocab.size), "bound": bound,
        "max_surface_auroc": max(v["auroc"] for v in surface.values()),
        "max_token_auroc": tokens[0]["auroc"] if tokens else None,
        "surface": surface, "tokens": tokens,
        "exempt_pattern": exempt.pattern if exempt else None, "exempt_tokens": exempt_rows,
        "over_bound": over,
    }


def audit(transcripts: Sequence[Transcript], text: TextFn = prompt_and_reply, **settings: Any) -> dict[str, Any]:
    """`audit_texts` over the text `text` reads from each transcript (its `label` is the label)."""
    labels = [t.label for t in transcripts]
    if any(v is None for v in labels):
        raise AuditInputError("an unlabelled transcript was passed; audit labelled sets only.")
    return {"text": getattr(text, "__name__", "text"), **audit_texts([text(t) for t in transcripts], labels,
                                                                     **settings)}


def audit_groups(transcripts: Sequence[Transcript], key: Callable[[Transcript], str],
                 text: TextFn = prompt_and_reply, **settings: Any) -> dict[str, dict[str, Any] | None]:
    """One audit per group (e.g. split, or split x cue words); a group with one label only maps to None."""
    groups: dict[str, list[Transcript]] = {}
    for t in transcripts:
        groups.setdefault(key(t), []).append(t)
    return {g: audit(ts, text, **settings) if len({t.label for t in ts}) == 2 else None
            for g, ts in groups.items()}
