"""The one place where errors become HTTP responses: `{"error": {"code", "message"}}`.

Under `/v2/` (the AssemblyAI-compatible API) the same errors take AssemblyAI's shape,
`{"error": "message"}`, which its clients read, and its statuses: AssemblyAI has no 422,
so a request it cannot use (a field, a parameter, a body that is not JSON) is 400.

Under `/v1/` (the OpenAI-compatible API) they take OpenAI's shape, `{"error": {"message",
"type", "param", "code"}}`, which OpenAI's SDKs read into `e.type`, `e.param`, `e.code`:
`type` as OpenAI's server gives it for the status (`openai_error_type`), `param` the one
request field the error is about (null when none or several), `code` this service's.
"""

from __future__ import annotations

import errno
import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic_core import ErrorDetails
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from transcriber.api.strict import NAMED
from transcriber.errors import TranscriberError

log = logging.getLogger(__name__)


def assemblyai(request: Request | None) -> bool:
    """Whether the request is one of `/v2`, whose errors are AssemblyAI's."""
    return request is not None and request.url.path.startswith("/v2/")


DATABASE_DOWN = "the job database is unavailable; try again shortly"

# A write the server's disk refuses: full, over a quota, or over the process's file size
# limit. Not the request's fault, and not a bug: 507 Insufficient Storage.
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def openai_api(request: Request | None) -> bool:
    """Whether the request is one of `/v1`, whose errors are OpenAI's."""
    return request is not None and request.url.path.startswith("/v1/")


def openai_error_type(status: int, code: str) -> str:
    """OpenAI's `error.type` for an error of this status: a spent quota is
    `insufficient_quota` and any other 429 `requests` (its rate limit's type), 5xx
    `server_error`, and every other 4xx `invalid_request_error` (401 included, as
    OpenAI answers a wrong key)."""
    if code == "quota_exceeded":
        return "insufficient_quota"
    if status == 429:
        return "requests"
    return "server_error" if status >= 500 else "invalid_request_error"


def openai_error(status: int, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    """An error's body under `/v1` (also the error event of a stream or a Realtime
    session): OpenAI's fields, with this service's `code`."""
    return {"message": message, "type": openai_error_type(status, code), "param": param,
            "code": code}  # fmt: skip


def error_response(
    status: int,
    code: str,
    message: str,
    request: Request | None = None,
    param: str | None = None,
) -> JSONResponse:
    if assemblyai(request):
        return JSONResponse({"error": message}, status_code=400 if status == 422 else status)
    if openai_api(request):
        body = openai_error(status, code, message, param)
        return JSONResponse({"error": body}, status_code=status)
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def validation_param(errors: Sequence[ErrorDetails]) -> str | None:
    """The one request field FastAPI's validation errors are about, as OpenAI names a
    `param` (`timestamp_granularities`, not the form's `timestamp_granularities[]`);
    None when they are about the body itself or about more than one field."""
    fields = set()
    for err in errors:
        loc = [x for x in err.get("loc", ()) if x not in ("body", "query", "path", "header")]
        if not loc or err.get("type") == "json_invalid":
            return None
        fields.add(str(loc[0]).removesuffix("[]"))
    return fields.pop() if len(fields) == 1 else None


def validation_message(errors: Sequence[ErrorDetails]) -> str:
    """FastAPI's validation errors as `field: problem; …`."""
    parts = []
    for err in errors:
        loc = err.get("loc", ())
        if err.get("type") == "json_invalid" or tuple(loc) == ("body",):
            parts.append(plain_validation_message([err]))  # the body itself: no field
            continue
        where = ".".join(str(x) for x in loc if x not in ("body", "query"))
        parts.append(f"{where}: {_plain(err)}")
    return capped(parts) or "invalid request"


def _plain(err: ErrorDetails) -> str:
    """A validation problem in the client's terms, not pydantic's or Starlette's."""
    msg = str(err.get("msg"))
    if "Expected UploadFile" in msg:  # a text field where a file part belongs
        return "must be a file, sent as a form part with a filename (curl -F 'file=@name')"
    return msg


def capped(parts: Sequence[str]) -> str:
    """Problems joined by `; `: the first few and how many more, so that a body of
    thousands of bad entries is answered in one line."""
    more = len(parts) - NAMED
    return "; ".join(parts[:NAMED]) + (f"; and {more} more problems" if more > 0 else "")


def plain_validation_message(errors: Sequence[ErrorDetails]) -> str:
    """The same in plain words, each naming its field as the client spells it
    (`custom_spelling[0].from is required`), or the body when the body itself is wrong."""
    parts = []
    for err in errors:
        where, *loc = err.get("loc", ()) or ("",)
        kind, msg = err.get("type"), str(err.get("msg"))
        field = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in loc).lstrip(".")
        if kind == "json_invalid":
            why = (err.get("ctx") or {}).get("error", "")
            at = f" at character {loc[-1]}" if loc else ""
            parts.append(f"the request body is not valid JSON ({why}{at})")
        elif where == "body" and not loc:
            parts.append(
                "the request body is missing; send a JSON object"
                if kind == "missing"
                else "the request body must be a JSON object"
            )
        elif kind == "missing":
            parts.append(f"{field} is required")
        elif msg.startswith("Input should"):
            parts.append(f"{field} {msg.removeprefix('Input ')}")
        else:
            parts.append(f"{field}: {msg}")
    return capped(parts) or "the request is not valid"


def allowed_methods(request: Request) -> list[str]:
    """The methods the OpenAPI document gives for the request's path (every route's, not
    only the first one that matched the path)."""
    table: list[tuple[re.Pattern[str], set[str]]] | None = getattr(
        request.app.state, "allowed_methods", None
    )
    if table is None:
        table = [
            (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), {m.upper() for m in ops})
            for path, ops in request.app.openapi()["paths"].items()
        ]
        request.app.state.allowed_methods = table
    found: set[str] = set()
    for pattern, methods in table:
        if pattern.match(request.url.path):
            found |= methods
    return sorted(found)


def install(app: FastAPI) -> None:
    @app.exception_handler(TranscriberError)
    async def _domain(request: Request, e: TranscriberError) -> JSONResponse:
        resp = error_response(e.http_status, e.code, e.message, request, e.param)
        resp.headers.update(e.headers)
        if e.http_status == 401:
            resp.headers["WWW-Authenticate"] = "Bearer"
        return resp

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, e: RequestValidationError) -> JSONResponse:
        words = plain_validation_message if assemblyai(request) else validation_message
        param = validation_param(e.errors())
        return error_response(422, "invalid_request", words(e.errors()), request, param)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, e: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        resp = error_response(e.status_code, code, str(e.detail), request)
        resp.headers.update(e.headers or {})
        if e.status_code == 405 and (methods := allowed_methods(request)):
            resp.headers["Allow"] = ", ".join(methods)  # all of them, not the first route's
        return resp

    @app.exception_handler(ClientDisconnect)
    async def _client_left(request: Request, e: ClientDisconnect) -> Response:
        # Nobody reads the answer; one line instead of two tracebacks.
        log.info("%s %s: the client left before its request body was sent", request.method,
                 request.url.path)  # fmt: skip
        return Response(status_code=499)  # "client closed request", as nginx logs it

    @app.exception_handler(OperationalError)
    async def _database(request: Request, e: OperationalError) -> JSONResponse:
        log.error("job database unavailable: %s", " ".join(str(e.orig).split()))
        return error_response(503, "unavailable", DATABASE_DOWN, request)

    @app.exception_handler(OSError)
    async def _disk(request: Request, e: OSError) -> JSONResponse:
        if e.errno not in NO_ROOM:
            return await _crash(request, e)
        log.error("%s %s: cannot store the request: %s", request.method, request.url.path, e)
        message = f"the server cannot store this request ({e.strerror}); try again later"
        return error_response(507, "insufficient_storage", message, request)

    @app.exception_handler(Exception)
    async def _crash(request: Request, e: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal error; see the server log", request)
