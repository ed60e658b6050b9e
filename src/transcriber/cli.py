"""Command line: transcribe files, list models, check the installation."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from transcriber import __version__
from transcriber.cli_inputs import (
    STDIN,
    STDIN_NAME,
    check_not_folder,
    expand_sources,
    is_url,
    output_stems,
    stdin_file,
)
from transcriber.config import Settings
from transcriber.domain import ChannelMode
from transcriber.domain import Progress as StageProgress
from transcriber.errors import InputError, OptionError, TranscriberError

if TYPE_CHECKING:
    from transcriber.jobs.store import SqlJobStore

app = typer.Typer(
    help="Video Transcriber: offline transcription of video and audio.",
    no_args_is_help=True,
    add_completion=False,
)
models_app = typer.Typer(help="Inspect the speech models.", no_args_is_help=True)
app.add_typer(models_app, name="models")
err = Console(stderr=True)
STDOUT = "-"  # --output-dir value that writes the transcript to stdout


def _version(value: bool) -> None:
    if value:
        typer.echo(f"transcriber {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log details to stderr.")
    ] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


@app.command()
def transcribe(
    files: Annotated[
        list[str],
        typer.Argument(help="Video or audio files, folders of them, http(s) URLs, or - for stdin."),
    ],
    language: Annotated[
        str,
        typer.Option("--language", "-l", help="auto (detect), ru, en or another Whisper code."),
    ] = "auto",
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="Comma-separated, of: txt, srt, vtt, tsv, json, docx, rttm"
            " (default txt,srt; stdout: txt).",
        ),
    ] = None,
    output_dir: Annotated[
        Path,
        typer.Option(
            "--output-dir", "-o", help="Folder for <stem>.<ext> outputs, or - for stdout."
        ),
    ] = Path("."),
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Model name (base, tiny.en, …) or a model folder."),
    ] = None,
    beam_size: Annotated[
        int | None, typer.Option("--beam-size", min=1, max=10, help="Beam width (default 5).")
    ] = None,
    word_timestamps: Annotated[
        bool, typer.Option("--word-timestamps", help="Add per-word times to json and captions.")
    ] = False,
    vad: Annotated[
        bool, typer.Option("--vad/--no-vad", help="Skip non-speech with Silero VAD.")
    ] = True,
    channels: Annotated[
        ChannelMode,
        typer.Option(
            "--channels", help="mix: downmix stereo; split: one speaker per channel (calls)."
        ),
    ] = ChannelMode.mix,
    diarize: Annotated[
        bool, typer.Option("--diarize", help="Label speakers A, B, … (who spoke when).")
    ] = False,
    speakers: Annotated[
        int | None, typer.Option("--speakers", min=1, max=32, help="Exact number of speakers.")
    ] = None,
    min_speakers: Annotated[
        int | None, typer.Option("--min-speakers", min=1, max=32, help="At least this many.")
    ] = None,
    max_speakers: Annotated[
        int | None, typer.Option("--max-speakers", min=1, max=32, help="At most this many.")
    ] = None,
    prompt: Annotated[
        str | None,
        typer.Option("--prompt", help="Text that steers spelling and style: names, terms."),
    ] = None,
    whisper_task: Annotated[
        str,
        typer.Option(
            "--task", help="transcribe, or translate: English text of speech in any language."
        ),
    ] = "transcribe",
    start: Annotated[
        str | None,
        typer.Option("--start", help="Transcribe from this time: seconds or \\[h:]mm:ss."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--end", help="Transcribe up to this time: seconds or \\[h:]mm:ss."),
    ] = None,
) -> None:
    """Transcribe FILES and write one output per format next to each other in --output-dir."""
    from transcriber.formats import FORMATS, parse_formats, render
    from transcriber.options import parse_time, request_options
    from transcriber.pipeline import Pipeline

    settings = _settings()
    to_stdout = str(output_dir) == STDOUT
    try:
        formats = parse_formats(fmt or ("txt" if to_stdout else "txt,srt"))
        if to_stdout and len(formats) > 1:
            raise OptionError(
                f"--output-dir - writes one format to stdout; --format names {len(formats)}"
            )
        sources = expand_sources(files)
        options = request_options(
            settings,
            language=language,
            model=model,
            beam_size=beam_size,
            word_timestamps=word_timestamps,
            vad=vad,
            channels=channels,
            diarize=diarize,
            speakers=speakers,
            min_speakers=min_speakers,
            max_speakers=max_speakers,
            initial_prompt=prompt,
            start=None if start is None else parse_time(start),
            end=None if end is None else parse_time(end),
            task=whisper_task,
        )
        if "rttm" in formats and not options.diarize and options.channels != ChannelMode.split:
            raise OptionError(
                "--format rttm lists who spoke when: add --diarize (or --channels split"
                " for a call with one speaker on each channel)"
            )
    except InputError as e:
        _error(e.message)
        raise typer.Exit(2) from e
    if not to_stdout:
        try:
            output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # a file of that name, no permission, a read-only disk
            _error(f"{output_dir}: cannot create the output folder ({e.strerror or e})")
            raise typer.Exit(2) from e
    pipeline = Pipeline(settings)
    worst = 0
    names = [_source_name(source) for source in sources]
    with _progress() as bars:
        for source, name, stem in zip(sources, names, output_stems(names), strict=True):
            task = bars.add_task(name, total=None, audio="")
            try:
                with _local(source, settings) as path:
                    transcript = pipeline.run(path, options, on_progress=_updater(bars, task))
            except TranscriberError as e:
                bars.update(task, visible=False)
                _error(e.message)
                worst = max(worst, 2 if isinstance(e, InputError) else 1)
                continue
            except Exception as e:  # a bug on one file must not lose the others
                bars.update(task, visible=False)
                logging.getLogger("transcriber").info("%s failed", source, exc_info=True)
                _error(f"{_shown(source)}: internal error: {type(e).__name__}: {e}")
                worst = max(worst, 1)
                continue
            if to_stdout:
                sys.stdout.buffer.write(render(transcript, formats[0], name=stem))
                sys.stdout.buffer.flush()
                written = "stdout"
            else:
                out = output_dir
                try:
                    for fmt_name in formats:
                        out = output_dir / f"{stem}.{FORMATS[fmt_name].extension}"
                        _write_whole(out, render(transcript, fmt_name, name=stem))
                except OSError as e:  # a full disk, a folder of that name: the others go on
                    bars.update(task, visible=False)
                    _error(f"{_shown(source)}: cannot write {out} ({e.strerror or e})")
                    worst = max(worst, 1)
                    continue
                written = f"{output_dir}/{stem}.{{{','.join(formats)}}}"
            bars.update(task, completed=1, total=1)
            bars.console.print(
                f"[green]done[/] {_shown(source)} → {written}"
                f"  ({transcript.language or 'no speech'}, {transcript.duration:.1f} s audio"
                f" in {transcript.processing_time:.1f} s)",
                soft_wrap=True,  # one line per file, however long its path, for scripts
                highlight=False,
            )
            for notice in transcript.notices:
                _warning(f"{_shown(source)}: {notice.message}")
    raise typer.Exit(worst)


def _write_whole(path: Path, data: bytes) -> None:
    """Write `path` whole or not at all: a full disk leaves no cut-off transcript."""
    part = path.with_name(f".{path.name}.part")
    try:
        part.write_bytes(data)
        os.replace(part, path)
    finally:
        with contextlib.suppress(OSError):
            part.unlink(missing_ok=True)


def _source_name(source: str) -> str:
    """What a source is called in progress bars and output names."""
    from transcriber.outbound import filename_of

    if source == STDIN:
        return STDIN_NAME
    if is_url(source):
        return filename_of(source).replace("/", "_").replace("\\", "_")
    return Path(source).name


def _shown(source: str) -> str:
    from transcriber.outbound import shown

    if source == STDIN:
        return STDIN_NAME
    return shown(source) if is_url(source) else source


@contextmanager
def _local(source: str, settings: Settings) -> Iterator[Path]:
    """A local file for `source`: the path itself, stdin spooled to a temporary file, or
    a URL downloaded to a temporary folder (any address: the CLI's user is the machine's
    operator)."""
    if source == STDIN:
        with stdin_file() as path:
            yield path
        return
    if not is_url(source):
        check_not_folder(source)
        yield Path(source)
        return
    import asyncio
    import tempfile

    from transcriber.errors import UploadTooLargeError, naming
    from transcriber.outbound import download
    from transcriber.storage.base import spool

    limit = int(settings.max_upload_mb * 1e6)
    with tempfile.TemporaryDirectory(prefix="transcriber-url-") as folder:
        path = Path(folder) / f"media{Path(_source_name(source)).suffix[:16]}"
        try:
            with path.open("wb") as out:
                asyncio.run(spool(download(source, limit, allow_private=True), out, limit))
        except UploadTooLargeError as e:  # the service's upload limit holds here too
            raise UploadTooLargeError(f"{e.message} (TRANSCRIBER_MAX_UPLOAD_MB)") from e
        with naming(path, _shown(source)):
            yield path


def _settings(**options: object) -> Settings:
    """The settings from the environment (and a command's options); a value that is not
    valid is one error line naming its variable or option, and exit code 2, not a
    traceback."""
    from pydantic import ValidationError

    try:
        return Settings(**options)  # type: ignore[arg-type]
    except ValidationError as e:
        for problem in e.errors():
            field = ".".join(str(part) for part in problem["loc"]) or "settings"
            name = f"--{field.replace('_', '-')}" if field in options else _variable(field)
            _error(f"{name}={problem.get('input')!r}: {problem['msg']}")
        raise typer.Exit(2) from None


def _variable(field: str) -> str:
    """The environment variable a setting came from (of its names, the one that is set)."""
    import os

    for name, spec in Settings.model_fields.items():
        names = [str(n) for n in getattr(spec.validation_alias, "choices", None) or ()]
        if field == name or field in names:  # an aliased field's error names the alias
            return next((n for n in names if n in os.environ), names[0] if names else "") or (
                f"TRANSCRIBER_{name.upper()}"
            )
    return f"TRANSCRIBER_{field.upper().replace('.', '__')}"


def _error(message: str) -> None:
    """One unwrapped line on stderr, so scripts can grep it."""
    err.print(f"[red]error:[/] {message}", soft_wrap=True, highlight=False)


def _warning(message: str) -> None:
    """A result that is there but needs a second look: one line on stderr."""
    err.print(f"[yellow]warning:[/] {message}", soft_wrap=True, highlight=False)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[audio]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
    )


def _updater(bars: Progress, task: TaskID) -> Callable[[StageProgress], None]:
    def update(p: StageProgress) -> None:
        total = p.audio_total or None
        bars.update(
            task,
            total=1.0 if total else None,
            completed=p.fraction,
            audio=f"{_clock(p.audio_done)} / {_clock(p.audio_total)}",
        )

    return update


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


@models_app.command("list")
def models_list() -> None:
    """Show the models this installation can use offline, and where they are."""
    from transcriber.models.listing import describe

    for row in describe(_settings()):
        typer.echo(row)


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Bind address (default: HOST or 0.0.0.0).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: PORT or 8086).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="In-process transcription workers (default 1).")
    ] = None,
) -> None:
    """Run the web service: REST API, WebSocket progress and the worker pool."""
    import uvicorn

    from transcriber import logs
    from transcriber.api import create_app
    from transcriber.api.listen import keep_alive

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if workers is not None:
        overrides["workers"] = workers
    settings = _settings(**overrides)
    logs.setup(settings.log_format, file=settings.log_file)
    # Opened here first, so that a database server that cannot be reached is one line,
    # not a start-up traceback, and keys made with `keys create` count for the bind rule.
    jobs = _job_store(settings)
    try:
        bind = settings.bind_host(stored_keys=jobs.has_keys())
    finally:
        jobs.close()
    if bind != settings.host:
        logging.getLogger("transcriber").warning(
            "no API keys: binding %s only; set HOST (or create a key) to expose the service", bind
        )
    config = uvicorn.Config(create_app(settings), host=bind, port=settings.port, log_config=None)
    server = uvicorn.Server(config)
    server.run(sockets=[keep_alive(config.bind_socket())])
    if not server.started:
        raise typer.Exit(3)  # as uvicorn.run exits when the app fails to start


@app.command()
def worker(
    threads: Annotated[
        int | None, typer.Option(help="Tasks run at once (default: TRANSCRIBER_WORKERS, 1).")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Serve Prometheus metrics on this port (TRANSCRIBER_WORKER_METRICS_PORT)."
        ),
    ] = None,
) -> None:
    """Run a Celery worker for the scale-out setup (TRANSCRIBER_QUEUE_URL=redis://...).

    It takes tasks that any API node queued, shares the database and storage with
    them, and reports progress to every node through Redis.
    """
    from transcriber import logs
    from transcriber.api.services import Services
    from transcriber.jobs.queue.celery import CeleryQueue
    from transcriber.jobs.queue.celery_worker import WorkerNode

    settings = _settings()
    logs.setup(settings.log_format, file=settings.log_file)
    services = Services.build(settings, listen=False)
    if not isinstance(services.queue, CeleryQueue):
        services.close()
        _error(
            f"the worker needs a Celery queue, and TRANSCRIBER_QUEUE_URL is"
            f" {settings.queue_url!r}; set it to redis://HOST:6379/0 (the embedded queue"
            " runs its workers inside `transcriber serve`)"
        )
        raise typer.Exit(2)
    port = metrics_port if metrics_port is not None else settings.worker_metrics_port
    if port:
        from prometheus_client import start_http_server

        start_http_server(port, addr=settings.bind_host(), registry=services.metrics.registry)
        logging.getLogger("transcriber").info("worker metrics on port %d", port)
    node = WorkerNode(
        services.jobs,
        services.worker,
        services.queue,
        threads if threads is not None else settings.workers,
        settings.lease_s,
    )
    try:
        node.run()
    finally:
        services.close()


keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _job_store(settings: Settings) -> SqlJobStore:
    """The job store alone, for the commands that need nothing else."""
    from transcriber.jobs.store import SqlJobStore

    if settings.db_url().startswith("sqlite:///"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqlJobStore(settings.db_url(), max_attempts=settings.max_attempts)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="A label for the key.")],
    minutes_per_day: Annotated[
        float | None,
        typer.Option("--minutes-per-day", min=0, help="Audio minutes it may submit per UTC day."),
    ] = None,
    max_running: Annotated[
        int | None,
        typer.Option("--max-running", min=1, help="Its tasks queued or running at once."),
    ] = None,
) -> None:
    """Create an API key; it is printed once and stored only as a hash."""
    from transcriber.api.auth import create_key
    from transcriber.jobs.usage import Quota

    jobs = _job_store(_settings())
    try:
        typer.echo(create_key(jobs, name, Quota(minutes_per_day, max_running)))
    finally:
        jobs.close()


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (ids, names and quotas, never the keys)."""
    jobs = _job_store(_settings())
    try:
        for key_id, name, created, quota in jobs.list_keys():
            limits = [
                f"{quota.minutes_per_day:g} min/day" if quota.minutes_per_day is not None else "",
                f"{quota.max_running} running" if quota.max_running is not None else "",
            ]
            shown = ", ".join(x for x in limits if x) or "no quota"
            typer.echo(f"{key_id}  {name}  {created:%Y-%m-%d %H:%M}  {shown}")
    finally:
        jobs.close()


@app.command()
def live(
    source: Annotated[
        str, typer.Argument(help="A media file to stream, or - for raw audio from stdin.")
    ],
    url: Annotated[
        str, typer.Option("--url", help="The running service (its base URL).")
    ] = "http://127.0.0.1:8086",
    api_key: Annotated[
        str | None, typer.Option("--api-key", help="A key of the service, when it needs one.")
    ] = None,
    language: Annotated[
        str,
        typer.Option("--language", "-l", help="auto (detect), ru, en or another Whisper code."),
    ] = "auto",
    speed: Annotated[
        float,
        typer.Option("--speed", min=0.0, help="Times real time; 0 sends as fast as it is taken."),
    ] = 1.0,
    rate: Annotated[
        int, typer.Option("--rate", help="Sample rate of stdin audio: 8000, 16000, 24000, 48000.")
    ] = 16000,
    encoding: Annotated[
        str, typer.Option("--encoding", help="Encoding of stdin audio: pcm_s16le, mulaw, alaw.")
    ] = "pcm_s16le",
    prompt: Annotated[
        str | None,
        typer.Option("--prompt", help="Text that steers spelling and style: names, terms."),
    ] = None,
    diarize: Annotated[
        bool, typer.Option("--diarize", help="Label speakers A, B, … as they speak.")
    ] = False,
    partials: Annotated[
        bool, typer.Option("--partials", help="Also show the text still being heard (stderr).")
    ] = False,
) -> None:
    """Stream SOURCE to a running service's live transcription and print finals as they come."""
    import asyncio
    from typing import Any
    from urllib.parse import urlsplit

    from websockets.exceptions import InvalidHandshake

    from transcriber.live.audio import AudioFormat
    from transcriber.live.client import live_url, stream
    from transcriber.live.feed import file_frames, final_line, stdin_frames

    try:
        fmt = AudioFormat(encoding, rate) if source == "-" else AudioFormat("pcm_s16le", 16000)
    except InputError as e:
        _error(e.message)
        raise typer.Exit(2) from e
    if source != "-" and not Path(source).is_file():
        _error(f"{source}: no such file")
        raise typer.Exit(2)
    if urlsplit(url).scheme not in ("http", "https", "ws", "wss") or not urlsplit(url).netloc:
        _error(f"--url {url!r}: give the service's address, such as http://127.0.0.1:8086")
        raise typer.Exit(2)
    chunks = stdin_frames(fmt) if source == "-" else file_frames(Path(source))
    start = {"type": "start", "language": language, "sample_rate": fmt.sample_rate,
             "encoding": fmt.encoding, "prompt": prompt, "diarize": diarize}  # fmt: skip
    failed: list[dict[str, Any]] = []

    def show(message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "final":
            typer.echo(final_line(message))
        elif kind == "partial" and partials and message.get("text"):
            err.print(f"[dim]… {message['text']}[/]", soft_wrap=True, highlight=False)
        elif kind == "error":
            failed.append(message["error"])
            _error(message["error"]["message"])
        elif kind == "done" and message.get("task_id"):
            err.print(f"saved as task {message['task_id']}", highlight=False)

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    try:
        run = asyncio.run(
            stream(
                live_url(url),
                start,
                chunks,
                fmt.sample_rate * fmt.bytes_per_sample,
                speed,
                show,
                headers=headers,
                limit_s=None,
            )
        )
    except (OSError, InvalidHandshake) as e:  # nothing there, or not this service
        _error(f"cannot reach the service at {url}: {e}")
        raise typer.Exit(1) from e
    except TranscriberError as e:
        _error(e.message)
        raise typer.Exit(2 if isinstance(e, InputError) else 1) from e
    if failed or not run.of_type("done"):
        if not failed:
            _error(f"the service closed the session ({run.close_code} {run.close_reason})")
        raise typer.Exit(2 if failed and failed[0].get("code") != "internal_error" else 1)


@app.command()
def doctor() -> None:
    """Check Python, packages, the model, decoding, disk space and any configured servers."""
    from transcriber.doctor import run_checks

    ok = True
    for check in run_checks(_settings()):
        mark = "[green]ok[/]  " if check.ok else "[red]FAIL[/]"
        # one line per check, however long its detail, so that `| grep FAIL` shows it all
        err.print(f"{mark} {check.name}: {check.detail}", soft_wrap=True, highlight=False)
        ok = ok and check.ok
    raise typer.Exit(0 if ok else 1)


def _tune_runtime() -> None:
    """Before anything loads CTranslate2: the OpenMP setting is read when it loads."""
    from pydantic import ValidationError

    from transcriber import runtime

    try:
        enabled = Settings().tune_runtime
    except ValidationError:
        return  # the command reports the bad setting itself
    if enabled:
        runtime.tune()


def main() -> None:
    _tune_runtime()
    try:
        app()
    except TranscriberError as e:  # pragma: no cover - a last resort; commands handle theirs
        _error(e.message)
        sys.exit(2 if isinstance(e, InputError) else 1)
