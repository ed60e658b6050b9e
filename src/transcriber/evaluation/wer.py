"""Word error rate with the project's one normalisation.

Lower case, ё→е, digits spelled out in the clip's language, punctuation dropped.
WER is corpus-level: total edits over total reference words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_DIGITS = re.compile(r"\d+(?:[.,]\d+)?")
_NON_WORD = re.compile(r"[^\w\s]|_")


def _spell(match: re.Match[str], lang: str) -> str:
    from num2words import num2words

    token = match.group().replace(",", ".")
    try:
        return f" {num2words(float(token) if '.' in token else int(token), lang=lang)} "
    except (NotImplementedError, OverflowError, ValueError):
        return f" {token} "


def normalize(text: str, lang: str) -> list[str]:
    t = text.lower().replace("ё", "е")
    t = _DIGITS.sub(lambda m: _spell(m, lang), t)
    t = t.lower().replace("ё", "е").replace("-", " ")
    return _NON_WORD.sub(" ", t).split()


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def corpus_wer(pairs: Iterable[tuple[str, str]], lang: str) -> float:
    """WER over (reference, hypothesis) pairs, all in language `lang`."""
    errors = words = 0
    for ref, hyp in pairs:
        r, h = normalize(ref, lang), normalize(hyp, lang)
        errors += edit_distance(r, h)
        words += len(r)
    return errors / words if words else 0.0
