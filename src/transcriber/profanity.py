"""Profanity masked as AssemblyAI's `filter_profanity` does it: a swear word keeps its
first letter and the rest becomes asterisks ("f***"). English and Russian (мат).

The patterns match whole words, and only the forms that are swearing: "Scunthorpe",
"shiitake", "бляха" (a buckle), "застрахуй" (insure) or "учебный" are left alone.
"""

from __future__ import annotations

import re

from transcriber.domain import Transcript

# Stems and the endings they take; each alternative is a whole word.
_ENGLISH = [
    r"(?:mother)?fuck\w*",
    r"(?:bull)?shit(?:s|ty|ting|ted|head|heads|hole)?",
    r"bitch(?:es|y|ing)?",
    r"cunts?",
    r"assholes?",
    r"dickheads?",
    r"twats?",
    r"wank(?:er|ers|ing)?",
    r"sluts?",
    r"whores?",
]
_RUSSIAN = [
    # хуй and its kin, with the prefixes swearing puts before it (нахуй, похуй, охуеть)
    r"(?:на|по|о|а|за|от|до|ни|вы|рас|под)?ху[йяеёи]\w*",
    r"\w*пизд\w*",
    # ебать and its kin: at the start of a word, or after a verbal prefix (заебал, уёбок)
    r"(?:за|на|у|вы|от|отъ|по|про|до|пере|под|подъ|раз|разъ|съ|въ|об|объ)?"
    r"[её]б(?:а|л|н|у|ы|и|ё|е|о)\w*",
    r"[её]б",
    r"бля(?:[дт]\w*)?",
    r"муда(?:к|ч|з)\w*",
    r"мудил\w*",
    r"залуп\w*",
    r"г[ао]ндон\w*",
    r"сук[аи]н?|сучк\w*|сучар\w*",
]
_PATTERN = re.compile(r"(?<!\w)(?:" + "|".join(_ENGLISH + _RUSSIAN) + r")(?!\w)", re.IGNORECASE)


def mask(text: str) -> str:
    """`text` with each swear word cut to its first letter and asterisks."""
    return _PATTERN.sub(lambda m: m.group(0)[0] + "*" * (len(m.group(0)) - 1), text)


def censor(t: Transcript) -> Transcript:
    """The transcript with swear words masked in its segments and words."""
    return t.retext(mask)
