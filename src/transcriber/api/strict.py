"""Requests that say what they cannot use: a field a route does not take is refused
(`422`, naming it and the field it was most likely meant as), never dropped unread.

Form routes check their fields in `uploads.UploadRoute`; a JSON body is a `StrictBody`.
Messages that list what a request sent name the first few and how many there were, so
a request of thousands of entries gets an error of one line.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

from transcriber.errors import OptionError

SYNONYMS = {
    "num_speakers": "speakers",
    "speakers_expected": "speakers",
    "initial_prompt": "prompt",
    "audio_file": "file",
    "audio_url": "url",
    "webhook_url": "webhook",
}
"""What other APIs (and pyannote, WhisperX) call our fields: the name an unknown field
is most likely meant as."""

NAMED = 5
"""How many items of a request an error message names before it counts the rest."""


def listed(items: Iterable[str], most: int = NAMED) -> str:
    """`a, b, c`; of more than `most`, the first `most` and how many more."""
    items = list(items)
    shown = ", ".join(items[:most])
    return shown if len(items) <= most else f"{shown} and {len(items) - most} more"


def unknown_fields(
    given: Iterable[str],
    known: Collection[str],
    kind: str = "field",
    takes: str = "",
    where: str = "",
) -> OptionError | None:
    """The error naming what of `given` is not in `known` (each with the known name it
    is most likely a misspelling of), or None when all are known. `takes` says what
    takes `known` ("this endpoint" when empty); `where` in the body they are
    (`segments[2]`)."""
    unknown = sorted({name for name in given if name not in known})
    if not unknown:
        return None
    said = []
    for name in unknown[:NAMED]:
        near = [SYNONYMS[name]] if SYNONYMS.get(name) in known else []
        near = near or difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        said.append(f"{name!r} (did you mean {near[0]!r}?)" if near else repr(name))
    more = f" and {len(unknown) - NAMED} more" if len(unknown) > NAMED else ""
    plural = "s" if len(unknown) > 1 else ""
    return OptionError(
        f"{where}{': ' if where else ''}unknown {kind}{plural} {', '.join(said)}{more};"
        f" {takes or 'this endpoint'} takes {', '.join(sorted(known))}"
    )


def refuse_unknown(given: Iterable[str], known: Collection[str], **words: str) -> None:
    if (error := unknown_fields(given, known, **words)) is not None:
        raise error


class StrictBody(BaseModel):
    """A JSON body taken as sent: `"yes"` is no boolean, and a key the model does not
    have is refused by name (OptionError, 422) rather than ignored. A body that is not
    JSON (a form, say) is refused saying that the route takes JSON."""

    # forbid: the OpenAPI schema says so (additionalProperties: false); the refusal
    # itself is `_known_keys_only`'s, which names the field meant
    model_config = ConfigDict(strict=True, extra="forbid")
    takes: ClassVar[str] = ""
    """What takes these fields, in the refusal ("this endpoint" when empty)."""

    @model_validator(mode="before")
    @classmethod
    def _known_keys_only(cls, data: Any) -> Any:
        if isinstance(data, bytes | bytearray):  # FastAPI's body of another content type
            raise OptionError(
                "this endpoint takes a JSON object as its body, sent with"
                " Content-Type: application/json (not form fields)"
            )
        if isinstance(data, Mapping):
            refuse_unknown(data, cls.field_names(), takes=cls.takes)
        return data

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.alias or name for name, f in cls.model_fields.items()}
