"""JSON Schema (draft 2020-12) of the document `json_doc.to_dict` writes.

Kept as data so tests, the API's OpenAPI page and downstream consumers all check against
one description instead of each keeping their own idea of the layout.
"""

from __future__ import annotations

from typing import Any

_SECONDS: dict[str, Any] = {"type": "number", "minimum": 0}
_PROBABILITY: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": 1}
_OPT_STR: dict[str, Any] = {"type": ["string", "null"]}

_WORD: dict[str, Any] = {
    "type": "object",
    "required": ["start", "end", "word", "probability"],
    "properties": {
        "start": _SECONDS,
        "end": _SECONDS,
        "word": {"type": "string"},
        "probability": _PROBABILITY,
        "speaker": {"type": "string"},
    },
    "additionalProperties": False,
}

_SEGMENT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "start", "end", "text", "speaker", "words"],
    "properties": {
        "id": {"type": "integer"},
        "start": _SECONDS,
        "end": _SECONDS,
        "text": {"type": "string"},
        "speaker": _OPT_STR,
        "words": {"type": "array", "items": _WORD},
        "avg_logprob": {"type": "number"},
        "no_speech_prob": _PROBABILITY,
        "overlap": {"type": "boolean"},
    },
    "additionalProperties": False,
}

JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Transcript",
    "type": "object",
    "required": ["text", "language", "language_probability", "duration", "segments", "metadata"],
    "properties": {
        "text": {"type": "string"},
        "language": _OPT_STR,
        "language_probability": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "duration": _SECONDS,
        "segments": {"type": "array", "items": _SEGMENT},
        "speakers": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["label", "seconds"],
                "properties": {
                    "label": {"type": "string"},
                    "seconds": _SECONDS,
                    "turns": {
                        "type": "array",
                        "items": {
                            "type": "array",
                            "items": _SECONDS,
                            "minItems": 2,
                            "maxItems": 2,
                        },
                    },
                },
                "additionalProperties": False,
            },
        },
        "metadata": {
            "type": "object",
            "required": ["total_segments", "processing_time", "model", "engine"],
            "properties": {
                "total_segments": {"type": "integer", "minimum": 0},
                "processing_time": _SECONDS,
                "model": {"type": "string"},
                "engine": {"type": "string"},
                "task": {"enum": ["transcribe", "translate"]},
                "timings": {"type": "object", "additionalProperties": _SECONDS},
                "warnings": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                            "values": {
                                "type": "object",
                                "additionalProperties": {"type": ["string", "number", "boolean"]},
                            },
                        },
                        "additionalProperties": False,
                    },
                },
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
