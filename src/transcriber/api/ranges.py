"""Serving a stored blob with byte ranges (RFC 9110 §14), the same way from every Store.

One range per request is honoured, which is what media players ask for. A Range
header in another unit, with several ranges or with bad syntax is ignored, and
the whole blob is sent with 200, as the RFC allows.
"""

from __future__ import annotations

import re

from fastapi.responses import Response, StreamingResponse

from transcriber.api.errors import error_response
from transcriber.storage import Store

# Positions past 64 bits are still read (a client asking "to the end" that way gets the
# rest, one starting past the end a 416); longer digit strings than this are no range.
_ONE_RANGE = re.compile(r"bytes=(\d{0,64})-(\d{0,64})", re.IGNORECASE)


class RangeNotSatisfiable(Exception):
    """The range asks for no byte of the blob."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """`[start, stop)` of the one range `header` asks of `size` bytes; None for the whole."""
    match = _ONE_RANGE.fullmatch(header.strip()) if header else None
    if match is None or match.group(0) == "bytes=-":
        return None
    first, last = match.groups()
    if not first:  # bytes=-N: the last N bytes
        if int(last) == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - int(last)), size
    start = int(first)
    if start >= size or (last and int(last) < start):
        raise RangeNotSatisfiable
    return start, size if not last else min(int(last) + 1, size)


def ranged_response(store: Store, key: str, media_type: str, range_header: str | None) -> Response:
    """The blob `key`, whole (200) or the asked range (206), streamed; 416 past its end."""
    size = store.size(key)
    try:
        wanted = parse_range(range_header, size)
    except RangeNotSatisfiable:
        refused = error_response(
            416, "range_not_satisfiable", f"the range asks for none of the {size} bytes"
        )
        refused.headers["Content-Range"] = f"bytes */{size}"
        return refused
    start, stop = wanted or (0, size)
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(stop - start)}
    if wanted is not None:
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    return StreamingResponse(
        store.read_range(key, start, stop),
        status_code=206 if wanted is not None else 200,
        media_type=media_type,
        headers=headers,
    )
