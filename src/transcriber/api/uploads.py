"""Uploads are refused before they are stored, and written to disk once.

Every route that takes a body is an `UploadRoute` (the routers of `/api`, the
drop-in endpoints and `/v2` use it). Before a byte of an upload is read, the route
1. resolves the API key (401),
2. compares `Content-Length` with the upload limit (413),
3. for a route that makes a task, checks the queue and the key's quota (429).

Then the body is read with the limit counted as it arrives, so a chunked body is
stopped the moment it passes the limit (413), and a body that stalls for
`TRANSCRIBER_UPLOAD_STALL_S` is given up (408). A multipart file part is written
straight to a file in the store's staging folder; the route gets it as a
`StagedUpload`, which the store then moves into place (`Store.put_file`), so an
upload is written once. Text fields must be UTF-8 (422 naming the field).
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar, get_args, get_origin
from urllib.parse import parse_qsl, unquote_to_bytes

from fastapi import Request, Response
from fastapi.routing import APIRoute
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.types import Message, Receive

from transcriber.api.auth import bearer, owner_for
from transcriber.api.strict import refuse_unknown
from transcriber.errors import (
    InputError,
    OptionError,
    TranscriberError,
    UploadStalledError,
    UploadTooLargeError,
)

log = logging.getLogger(__name__)

SLACK_BYTES = 64 * 1024
"""What a multipart body may hold beyond its file: boundaries, headers and fields."""
FIELD_BYTES = 1 << 20
"""All text fields of one form together."""
HEADER_BYTES = 64 * 1024
"""One header line of a part: room for a file name of thousands of characters."""
WRITE_BYTES = 1 << 20
"""File data is written to disk in blocks of about this size, from a thread."""
MAX_FILES = 1

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class UploadSpec:
    """How a route takes its body: `queued` routes make a task (the queue and the key's
    quota are checked first); `raw` routes read the body itself, not a form.
    `repeatable` routes may answer a repeat of an earlier request from its task, so a
    full queue or a spent quota refuses them before the body only when the key has no
    task that a repeat could be answered from (api/reuse.py)."""

    queued: bool = True
    raw: bool = False
    repeatable: bool = False
    # Form fields the route does not declare are refused (422 naming them), except these
    # (fields older versions took); None lets them pass, as the drop-in dialects must:
    # their clients send fields of newer API versions. A route that refuses unknown
    # fields refuses a body that is not a form too (JSON, say), naming what it takes.
    known_extra: frozenset[str] | None = None


def upload_route(
    *,
    queued: bool = True,
    raw: bool = False,
    repeatable: bool = False,
    known_extra: frozenset[str] | None = None,
) -> Callable[[F], F]:
    """Mark an endpoint whose upload is not a multipart file, that makes no task, that
    can answer a repeated request from an earlier task, or that refuses unknown fields."""

    def mark(endpoint: F) -> F:
        spec = UploadSpec(queued, raw, repeatable, known_extra)
        endpoint.upload_spec = spec  # type: ignore[attr-defined]
        return endpoint

    return mark


class StagedUpload(UploadFile):
    """A file part already on disk at `path`, in the store's staging folder."""

    def __init__(self, path: Path, filename: str, size: int, headers: Headers) -> None:
        super().__init__(path.open("rb"), size=size, filename=filename, headers=headers)
        self.path = path


def staged_path(upload: UploadFile) -> Path:
    """Where an upload's bytes are on disk (every file that reaches a route is staged)."""
    if not isinstance(upload, StagedUpload):
        raise TypeError("uploads reach routes through UploadRoute")
    return upload.path


class ParsedRequest(Request):
    """The request as the route sees it: its form was already read by `read_form`."""

    def __init__(self, scope: Any, receive: Receive, form: FormData) -> None:
        super().__init__(scope, receive)
        self.parsed = form

    def form(self, **_: Any) -> Any:  # FastAPI awaits this
        async def parsed() -> FormData:
            return self.parsed

        return parsed()


class BodyGuard:
    """`receive` for a request whose body may be at most `limit` bytes and may not pause
    for longer than `stall_s` seconds before it is complete."""

    def __init__(self, receive: Receive, limit: int, stall_s: float, slack: int = 0) -> None:
        self.receive, self.limit, self.stall_s, self.slack = receive, limit, stall_s, slack
        self.received = 0
        self.complete = False

    async def __call__(self) -> Message:
        if self.complete:  # waiting for the client to leave: no time limit
            return await self.receive()
        try:
            message = await asyncio.wait_for(self.receive(), self.stall_s)
        except TimeoutError:
            raise UploadStalledError(
                f"the request body stalled: nothing arrived for {self.stall_s:g} s"
                f" after {self.received} bytes"
            ) from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit + self.slack:
                raise UploadTooLargeError(too_large(self.limit))
            self.complete = not message.get("more_body", False)
        return message


def too_large(limit: int) -> str:
    return f"the upload is larger than the limit of {limit / 1e6:g} MB"


def upload_limit(settings: Any) -> int:
    return int(settings.max_upload_mb * 1e6)


class UploadRoute(APIRoute):
    """A route whose body is checked and read as the module docstring says."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        spec: UploadSpec | None = getattr(self.endpoint, "upload_spec", None)
        if spec is None and self.body_field is not None:
            spec = UploadSpec(queued=_takes_file(self))
        if spec is None:
            return handler

        async def guarded(request: Request) -> Response:
            services = request.app.state.services
            limit = upload_limit(services.settings)
            slack = 0 if spec.raw else SLACK_BYTES  # a raw body is the file itself
            await refuse_early(request, services, limit, slack, spec)
            stall_s = services.settings.upload_stall_s
            guard = BodyGuard(request.receive, limit, stall_s, slack)
            strict = spec.known_extra is not None
            if spec.raw or not (strict or _takes_file(self)):
                return await handler(Request(request.scope, guard))
            staging = services.store.staging()
            form = await read_form(Request(request.scope, guard), limit, staging, strict)
            try:
                refuse_repeated_fields(form, self)
                if spec.known_extra is not None:
                    refuse_unknown_fields(form, self, spec.known_extra)
                return await handler(ParsedRequest(request.scope, guard, form))
            finally:
                await discard(form)

        return guarded


def refuse_unknown_fields(form: FormData, route: APIRoute, known_extra: frozenset[str]) -> None:
    """OptionError naming the form's fields that `route` does not take: a misspelt
    option (`num_speakers` for `speakers`) would otherwise be dropped without a word."""
    known = {p.alias for p in route.dependant.body_params}
    given = (name for name in form if name not in known_extra)
    refuse_unknown(given, known, kind="form field")


def refuse_repeated_fields(form: FormData, route: APIRoute) -> None:
    """OptionError naming a field given more than once that takes one value
    (`language=en` and `language=ru`): the last would otherwise win without a word.
    Fields that take a list (`timestamp_granularities[]`) repeat as they should."""
    many = {p.alias for p in route.dependant.body_params if _takes_many(p.field_info.annotation)}
    names = [name for name, _ in form.multi_items()]
    for name in dict.fromkeys(names):
        if names.count(name) > 1 and name not in many:
            raise OptionError(
                f"form field {name!r} is given {names.count(name)} times; give it once"
            )


def _takes_many(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        return True
    return origin is not None and any(_takes_many(a) for a in get_args(annotation))


def _takes_file(route: APIRoute) -> bool:
    from fastapi import params

    body = route.body_field
    return (
        body is not None
        and isinstance(body.field_info, params.File | params.Form)
        and any(isinstance(p.field_info, params.File) for p in route.dependant.body_params)
    )


async def refuse_early(
    request: Request, services: Any, limit: int, slack: int, spec: UploadSpec
) -> None:
    """The refusals that need no body: a bad key, a declared size over the limit, a full
    queue or a spent quota (for a repeatable route, only when no earlier task of the
    key could answer a repeat)."""
    settings = services.settings
    key = bearer(request.headers.get("authorization"))
    owner = await asyncio.to_thread(owner_for, services.jobs, settings.key_list(), key)
    request.state.owner = owner
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + slack:
        raise UploadTooLargeError(too_large(limit))
    if spec.queued:
        from transcriber.api.submit import check_room

        try:
            await asyncio.to_thread(check_room, services, owner)
        except TranscriberError:
            if not spec.repeatable:
                raise
            if not await asyncio.to_thread(services.jobs.has_requests, owner):
                raise


async def read_form(
    request: Request, file_limit: int, staging: Path, strict: bool = False
) -> FormData:
    """The request's form: text fields (UTF-8) and at most one file, staged on disk.
    `strict`: a body of another content type is refused (OptionError), not read as an
    empty form."""
    kind, params = parse_options_header(request.headers.get("content-type"))
    if kind == b"multipart/form-data":
        boundary = params.get(b"boundary")
        if not boundary:
            raise InputError("a multipart body needs a boundary in its Content-Type")
        return await _FormReader(boundary, file_limit, staging).read(request)
    if kind == b"application/x-www-form-urlencoded":
        body = await request.body()
        if len(body) > FIELD_BYTES:
            raise UploadTooLargeError(f"the form's fields exceed {FIELD_BYTES} bytes")
        try:
            pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            raise OptionError("the form's fields are not valid UTF-8") from None
        fields: list[tuple[str, str | UploadFile]] = list(pairs)
        return FormData(fields)
    if strict and kind and request.headers.get("content-length") != "0":
        raise OptionError(
            "this endpoint takes form fields (multipart/form-data or"
            f" application/x-www-form-urlencoded), not {kind.decode('latin-1')}"
        )
    return FormData()  # the route names the fields it misses


async def discard(form: FormData) -> None:
    """Close the form's files and delete what the route did not store."""
    for _, value in form.multi_items():
        if isinstance(value, StagedUpload):
            value.file.close()
            await asyncio.to_thread(value.path.unlink, missing_ok=True)


_EXTENDED = re.compile(rb"(?:^|;)\s*filename\*\s*=\s*([^;\s]+)", re.IGNORECASE)


def _extended_filename(disposition: bytes) -> str | None:
    """The RFC 5987 `filename*=UTF-8''a%20b.wav` of a part's Content-Disposition, which
    some clients send alone (python-multipart reads only `filename`); None if absent."""
    m = _EXTENDED.search(disposition)
    if m is None:
        return None
    charset, _, rest = m[1].partition(b"'")
    _, _, encoded = rest.partition(b"'")
    try:
        return unquote_to_bytes(encoded).decode(charset.decode("ascii") or "utf-8")
    except (LookupError, UnicodeDecodeError):
        raise OptionError("the file name (filename*) is not in a charset it names") from None


def _text(raw: bytes | bytearray, what: str) -> str:
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise OptionError(f"{what} is not valid UTF-8") from None


@dataclass
class _FilePart:
    name: str
    filename: str
    path: Path
    out: IO[bytes]
    headers: list[tuple[bytes, bytes]]
    size: int = 0
    pending: bytearray = field(default_factory=bytearray)
    ended: bool = False


class _FormReader:
    """python-multipart's callbacks, collecting fields and streaming the file to disk."""

    def __init__(self, boundary: bytes, file_limit: int, staging: Path) -> None:
        self.boundary, self.file_limit, self.staging = boundary, file_limit, staging
        self.items: list[tuple[str, str | UploadFile]] = []
        self.header_name = bytearray()
        self.header_value = bytearray()
        self.headers: list[tuple[bytes, bytes]] = []
        self.disposition = b""
        self.name = ""
        self.data = bytearray()
        self.field_bytes = 0
        self.file: _FilePart | None = None  # the part being read, if it is a file
        self.files: list[_FilePart] = []

    async def read(self, request: Request) -> FormData:
        parser = MultipartParser(
            self.boundary,
            {
                "on_part_begin": self._part_begin,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_header_field": lambda d, a, b: self.header_name.extend(d[a:b]),
                "on_header_value": lambda d, a, b: self.header_value.extend(d[a:b]),
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
            },
            max_header_size=HEADER_BYTES,
        )
        try:
            async for chunk in request.stream():
                try:
                    parser.write(chunk)
                except FormParserError as e:
                    raise InputError(f"the multipart body cannot be read: {e}") from None
                await self._flush()
            parser.finalize()
            await self._flush()
            if any(not f.ended for f in self.files):
                raise InputError("the multipart body ends inside its file part")
        except BaseException:
            for f in self.files:
                f.out.close()
                f.path.unlink(missing_ok=True)
            raise
        return FormData(self.items)

    async def _flush(self) -> None:
        """Write what the file parts hold in memory: in large blocks, from a thread."""
        for f in self.files:
            if f.out.closed:
                continue
            if f.pending and (f.ended or len(f.pending) >= WRITE_BYTES):
                block, f.pending = bytes(f.pending), bytearray()
                await asyncio.to_thread(f.out.write, block)
            if f.ended:
                f.out.close()
                upload = StagedUpload(f.path, f.filename, f.size, Headers(raw=f.headers))
                self.items.append((f.name, upload))

    def _part_begin(self) -> None:
        self.headers, self.disposition, self.data, self.file = [], b"", bytearray(), None

    def _header_end(self) -> None:
        name = bytes(self.header_name).lower()
        if name == b"content-disposition":
            self.disposition = bytes(self.header_value)
        self.headers.append((name, bytes(self.header_value)))
        self.header_name, self.header_value = bytearray(), bytearray()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        if b"name" not in options:
            raise InputError('a part of the multipart body has no Content-Disposition "name"')
        self.name = _text(options[b"name"], "a form field's name")
        if b"filename" in options:
            filename = _text(options[b"filename"], "the file name")
        elif (extended := _extended_filename(self.disposition)) is not None:
            filename = extended
        else:
            return
        if len(self.files) >= MAX_FILES:
            raise OptionError(f"one file per request; {self.name!r} is another")
        path = self.staging / uuid.uuid4().hex
        self.file = _FilePart(self.name, filename, path, path.open("wb"), self.headers)
        self.files.append(self.file)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self.file is None:
            self.field_bytes += end - start
            if self.field_bytes > FIELD_BYTES:
                raise UploadTooLargeError(f"the form's fields exceed {FIELD_BYTES} bytes")
            self.data.extend(data[start:end])
            return
        self.file.size += end - start
        if self.file.size > self.file_limit:
            raise UploadTooLargeError(too_large(self.file_limit))
        self.file.pending.extend(data[start:end])

    def _part_end(self) -> None:
        if self.file is not None:
            self.file.ended = True
            return
        try:
            text = bytes(self.data).decode("utf-8")
        except UnicodeDecodeError:
            # Most often a file sent without a file name (curl -F 'file=<a.wav' for '@').
            raise OptionError(
                f"form field {self.name!r} is not text (not valid UTF-8), and a part"
                " without a filename is read as text; send a file as a file part, with a"
                f" filename (curl: -F '{self.name}=@PATH')"
            ) from None
        self.items.append((self.name, text))
