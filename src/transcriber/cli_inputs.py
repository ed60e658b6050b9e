"""What the CLI's arguments stand for: files, folders of media files, stdin and URLs, and
the output names they get.

- A folder stands for the audio and video files directly inside it (by extension,
  sorted by name, hidden files left out), so that `transcriber transcribe talks/ -o
  talks/` run twice does not take its own .txt and .srt outputs for inputs.
- `-` is whatever is piped to stdin (`ffmpeg … -f wav - | transcriber transcribe -`),
  spooled to a temporary file so that any container, mp4 included, can be read.
- Two inputs with the same stem (`a/intro.mp4`, `b/intro.mp4`) would write the same
  outputs; the later ones get `intro-2`, `intro-3`, … instead of overwriting.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from transcriber.errors import InputError, naming

STDIN = "-"
STDIN_NAME = "stdin"
_COPY_CHUNK = 1 << 20

# Suffixes a folder is searched for: what ffmpeg reads that people keep speech in.
MEDIA_SUFFIXES = frozenset(
    {
        # audio
        ".3ga", ".aac", ".ac3", ".aif", ".aifc", ".aiff", ".amr", ".ape", ".au", ".awb",
        ".caf", ".dts", ".eac3", ".flac", ".gsm", ".m4a", ".m4b", ".mka", ".mp2", ".mp3",
        ".mpa", ".oga", ".ogg", ".opus", ".snd", ".spx", ".tta", ".voc", ".w64", ".wav",
        ".wma", ".wv",
        # video
        ".3g2", ".3gp", ".asf", ".avi", ".divx", ".dv", ".f4v", ".flv", ".m2ts", ".m4v",
        ".mkv", ".mov", ".mp4", ".mpeg", ".mpg", ".mts", ".mxf", ".ogv", ".qt", ".rm",
        ".rmvb", ".ts", ".vob", ".webm", ".wmv",
    }
)  # fmt: skip


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def expand_sources(sources: list[str]) -> list[str]:
    """The inputs the arguments stand for, in order: a folder becomes its media files.

    A folder without any stays as it is, for `local_file` to name as an input that failed
    (the others still run). Raises InputError when stdin is named twice (it can be read
    once): nothing has been transcribed yet, so the run stops before any work.
    """
    if sources.count(STDIN) > 1:
        raise InputError("stdin (-) can be named only once")
    out: list[str] = []
    for source in sources:
        path = Path(source)
        if source == STDIN or is_url(source) or not path.is_dir():
            out.append(source)
            continue
        try:
            found = sorted(
                p
                for p in path.iterdir()
                if p.suffix.lower() in MEDIA_SUFFIXES and not p.name.startswith(".") and p.is_file()
            )
        except OSError as e:
            raise InputError(f"{source}: cannot read this folder ({e.strerror or e})") from e
        out += [str(p) for p in found] or [source]
    return out


def check_not_folder(source: str) -> None:
    """InputError for a folder left among the inputs: it holds no media file."""
    if Path(source).is_dir():
        raise InputError(
            f"{source}: no audio or video file directly in this folder"
            " (files are picked by extension: .mp4, .mkv, .mp3, .wav, .ogg, …)"
        )


def output_stems(names: list[str]) -> list[str]:
    """Each input's output stem; a stem already taken gets -2, -3, … so that no input's
    outputs overwrite another's."""
    taken: set[str] = set()
    stems = []
    for name in names:
        stem = base = Path(name).stem or name
        n = 1
        while stem in taken:
            n += 1
            stem = f"{base}-{n}"
        taken.add(stem)
        stems.append(stem)
    return stems


@contextmanager
def stdin_file() -> Iterator[Path]:
    """What is piped to stdin, as a temporary file (deleted afterwards)."""
    if sys.stdin is None or sys.stdin.isatty():
        raise InputError("stdin (-): nothing is piped in; pipe a file, as in: cat talk.mp4 | …")
    with tempfile.TemporaryDirectory(prefix="transcriber-stdin-") as folder:
        path = Path(folder) / STDIN_NAME
        with path.open("wb") as out:
            shutil.copyfileobj(sys.stdin.buffer, out, _COPY_CHUNK)
        with naming(path, STDIN_NAME):
            yield path
