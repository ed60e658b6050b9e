"""Read the tensors of a PyTorch checkpoint with numpy alone (torch is never imported).

Two layouts exist. The legacy one (torch < 1.6) is a stream of pickles: a magic
number, the protocol version, a dict of system info, the object itself (tensors
refer to storages through persistent ids), a pickled list of storage keys, and then
each storage's raw data as an 8-byte little-endian element count plus the elements.
The zip layout (torch >= 1.6) holds the object in `<name>/data.pkl` and each storage
in `<name>/data/<key>`. Only the handful of classes a state dict needs are resolved;
any other global in the pickle is refused, so loading cannot run foreign code.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

# torch storage class → numpy dtype (little-endian, as every checkpoint we read is)
_CODES = {"Float": "<f4", "Double": "<f8", "Half": "<f2", "Long": "<i8", "Int": "<i4"}
_CODES |= {"Short": "<i2", "Char": "i1", "Byte": "u1", "Bool": "?"}
_DTYPES = {f"{name}Storage": np.dtype(code) for name, code in _CODES.items()}


@dataclass(frozen=True, slots=True)
class _StorageType:
    dtype: np.dtype[Any]


class _Storage:
    """A storage known by key; its data arrives after the object has been unpickled."""

    def __init__(self, key: str, dtype: np.dtype[Any], numel: int) -> None:
        self.key, self.dtype, self.numel = key, dtype, numel
        self.data: np.ndarray | None = None
        self.view: tuple[_Storage, int, int] | None = None  # root, offset, size

    def array(self) -> np.ndarray:
        if self.view is not None:
            root, offset, size = self.view
            return root.array()[offset : offset + size]
        if self.data is None:
            raise ValueError(f"checkpoint storage {self.key} has no data")
        return self.data


class _LazyTensor:
    def __init__(self, storage: _Storage, offset: int, size: tuple[int, ...], stride: Any) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def array(self) -> np.ndarray:
        flat = self.storage.array()
        stride = tuple(int(s) for s in self.stride)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, stride, strict=True))
        if 0 not in self.size and not (
            min(stride, default=0) >= 0 <= self.offset <= last < len(flat)
        ):
            raise ValueError(f"checkpoint tensor reaches outside its storage {self.storage.key}")
        strides = tuple(s * flat.itemsize for s in stride)
        view = np.lib.stride_tricks.as_strided(flat[self.offset :], self.size, strides)
        return np.array(view)  # a compact copy


def _rebuild_tensor(storage: _Storage, offset: int, size: Any, stride: Any, *_: Any) -> _LazyTensor:
    return _LazyTensor(storage, int(offset), tuple(int(s) for s in size), stride)


def _rebuild_parameter(data: _LazyTensor, *_: Any) -> _LazyTensor:
    return data


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _DTYPES:
            return _StorageType(_DTYPES[name])
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"checkpoint refers to {module}.{name}, which is not allowed")

    def persistent_load(self, pid: Any) -> _Storage:
        if not isinstance(pid, tuple) or pid[0] != "storage":
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        kind, key, _location, numel = pid[1], str(pid[2]), pid[3], int(pid[4])
        view = pid[5] if len(pid) > 5 else None
        root = self.storages.get(key)
        if root is None:
            root = self.storages[key] = _Storage(key, kind.dtype, numel)
        if view is None:
            return root
        view_key, offset, size = str(view[0]), int(view[1]), int(view[2])
        if view_key not in self.storages:
            self.storages[view_key] = _Storage(view_key, kind.dtype, size)
            self.storages[view_key].view = (root, offset, size)
        return self.storages[view_key]


def _resolve(obj: Any) -> Any:
    if isinstance(obj, _LazyTensor):
        return obj.array()
    if isinstance(obj, dict):
        return {k: _resolve(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_resolve(v) for v in obj)
    return obj


def _load_legacy(f: IO[bytes]) -> Any:
    if pickle.load(f) != LEGACY_MAGIC:
        raise ValueError("not a PyTorch checkpoint (bad magic number)")
    pickle.load(f)  # protocol version
    pickle.load(f)  # system info
    storages: dict[str, _Storage] = {}
    obj = _Unpickler(f, storages).load()
    for key in pickle.load(f):
        st = storages[str(key)]
        count = int.from_bytes(f.read(8), "little")
        size = count * np.dtype(st.dtype).itemsize
        raw = f.read(size)
        if len(raw) != size:
            raise ValueError(f"checkpoint is truncated in storage {key}")
        st.data = np.frombuffer(raw, dtype=st.dtype)
    return _resolve(obj)


def _load_zip(zf: zipfile.ZipFile) -> Any:
    pkl = next(n for n in zf.namelist() if n.endswith("/data.pkl") or n == "data.pkl")
    prefix = pkl[: -len("data.pkl")]
    storages: dict[str, _Storage] = {}
    obj = _Unpickler(io.BytesIO(zf.read(pkl)), storages).load()
    for key, st in storages.items():
        if st.view is None:
            st.data = np.frombuffer(zf.read(f"{prefix}data/{key}"), dtype=st.dtype)
    return _resolve(obj)


def load_checkpoint(path: str | Path) -> Any:
    """The unpickled checkpoint object, with every tensor replaced by a numpy array."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            return _load_zip(zf)
    with path.open("rb") as f:
        return _load_legacy(f)


def load_state_dict(path: str | Path, key: str = "model_state") -> dict[str, np.ndarray]:
    """name → array of a checkpoint's state dict (found under `key` if it is wrapped)."""
    obj = load_checkpoint(path)
    if isinstance(obj, dict) and isinstance(obj.get(key), dict):
        obj = obj[key]
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: checkpoint holds no state dict")
    return {str(k): v for k, v in obj.items() if isinstance(v, np.ndarray)}
