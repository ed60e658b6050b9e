"""One error tree. Every error a user can cause says what was wrong and what to do.

`http_status` is read by the API's single exception handler; the CLI maps every
`InputError` to exit code 2. `param` names the one request field an error is about,
where there is one (OpenAI's error shape under `/v1` carries it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class TranscriberError(Exception):
    code = "internal_error"
    http_status = 500

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers: dict[str, str] = {}
        """HTTP headers that go with the answer (Retry-After, …)."""


class InputError(TranscriberError):
    """The user's input is at fault; nothing else is affected."""

    code = "bad_input"
    http_status = 400


class MediaError(InputError):
    code = "unsupported_media"
    http_status = 415


class FileMissingError(InputError):
    code = "file_not_found"
    http_status = 404


class EmptyFileError(MediaError):
    code = "empty_file"


class NotMediaError(MediaError):
    code = "not_media"


class NoAudioStreamError(MediaError):
    code = "no_audio_stream"


class TruncatedMediaError(MediaError):
    code = "truncated_media"


class NotAudioError(MediaError):
    """A live client sent something other than raw audio where samples belong."""

    code = "not_audio"


class OptionError(InputError):
    code = "invalid_option"
    http_status = 422


class ModelError(TranscriberError):
    code = "model_unavailable"
    http_status = 503


class ModelNotFoundError(ModelError, OptionError):
    code = "model_not_found"
    http_status = 422


class MissingExtraError(TranscriberError):
    """A backend was selected whose optional dependency is not installed."""

    code = "missing_extra"


class UploadTooLargeError(InputError):
    code = "too_large"
    http_status = 413


class UploadStalledError(InputError):
    """The client stopped sending a request body before it was complete."""

    code = "request_timeout"
    http_status = 408


class QueueFullError(TranscriberError):
    code = "queue_full"
    http_status = 429
    retry_after = 30

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(self.retry_after)}


class QuotaExceededError(TranscriberError):
    """The API key has used what its quota allows for now; `headers` say what is left."""

    code = "quota_exceeded"
    http_status = 429

    def __init__(self, message: str, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.headers = headers


class NotFoundError(InputError):
    code = "not_found"
    http_status = 404


class UncertainLanguageError(InputError):
    """The language was detected, but less surely than the request required."""

    code = "language_uncertain"
    http_status = 422


class TooLittleSpeechError(InputError):
    """Less of the audio is speech than the request required."""

    code = "too_little_speech"
    http_status = 422


class ConflictError(InputError):
    code = "conflict"
    http_status = 409


class EditConflictError(ConflictError):
    """A transcript edit was made against a revision that is no longer the latest."""

    code = "edit_conflict"


class TranscriptionFailedError(InputError):
    """A synchronous request whose task failed; the message is the task's reason."""

    code = "transcription_failed"
    http_status = 422


class FetchError(InputError):
    """A URL given by the client could not be used: refused by policy, or it failed."""

    code = "fetch_failed"
    http_status = 400


class TooManySessionsError(TranscriberError):
    """Every live session this process allows is in use."""

    code = "too_many_sessions"
    http_status = 429


class PrivateAddressError(FetchError):
    """A URL given by the client points into a private network, which is not called."""

    code = "private_address"


class UnavailableError(TranscriberError):
    """The service cannot do this here and now, through no fault of the request."""

    code = "unavailable"
    http_status = 503


class AuthError(InputError):
    code = "unauthorized"
    http_status = 401


class CancelledError(TranscriberError):
    """Raised inside a running task when its cancellation was requested."""

    code = "cancelled"
    http_status = 409


def failed_task_error(code: str | None, message: str) -> TranscriberError:
    """The error a request that waited for a task answers with when the task failed.

    A reason the input caused comes back as its own code and HTTP status (a truncated
    file is `truncated_media` 415 whether the upload or the worker found it out); any
    other reason, or a code this build does not know, as `transcription_failed`.
    """
    for cls in _subclasses(InputError):
        if cls.code == code and cls.__init__ is TranscriberError.__init__:
            return cls(message)
    return TranscriptionFailedError(message)


def _subclasses(cls: type[TranscriberError]) -> Iterator[type[TranscriberError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


@contextmanager
def naming(path: str | Path, name: str) -> Iterator[None]:
    """Input errors raised inside name the user's `name` where they would say the local `path`.

    Uploads and S3 objects are worked on as temporary or stored files whose paths mean
    nothing to the user (and should not be shown to a remote one).
    """
    try:
        yield
    except InputError as e:
        raise type(e)(e.message.replace(str(path), name), e.param) from e
