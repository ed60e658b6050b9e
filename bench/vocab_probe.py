"""How much of a beam search is the output projection? A timing probe for issue 24.

Whisper base's decoder ends in a 51,865-word output projection. This probe writes
copies of the model whose vocabulary keeps only the words a Russian transcript can
use (the 256 byte tokens, tokens of Cyrillic letters, digits and punctuation, the
task tokens; `--latin N` also keeps the Latin-letter tokens among the first N ids),
then beam-searches the same encoder outputs with the full model and with each copy,
on one thread, alternating, and prints the seconds and how many windows came out
with the same words.

Not a product path: the copies are written to a temporary folder and removed. The
result (docs/performance.md, fifth session) is why no smaller vocabulary was built.

    python -m bench.vocab_probe bench/out/ru_6min.wav --latin 0,5000 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

EMBEDDINGS = "decoder/embeddings/weight"  # the projection is an alias of it
FLOAT16 = 4  # CTranslate2's DataType id


def byte_decoder() -> dict[str, int]:
    """GPT-2's printable stand-in for each byte, reversed (the tokenizer's vocabulary
    spells every byte as one printable character)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    stand_ins = dict.fromkeys(printable, 0)
    shift = 0
    table = {}
    for b in range(256):
        if b in stand_ins:
            table[chr(b)] = b
        else:
            table[chr(256 + shift)] = b
            shift += 1
    return table


def text_core(raw: bytes) -> str | None:
    """The token's characters, allowing one cut Cyrillic letter at either end (a tail
    byte first, a lead byte last); None if anything else is cut."""
    start = 1 if raw and 0x80 <= raw[0] < 0xC0 else 0
    end = len(raw) - 1 if len(raw) > start and 0xC2 <= raw[-1] <= 0xD4 else len(raw)
    try:
        return raw[start:end].decode("utf-8")
    except UnicodeDecodeError:
        return None


def russian_vocabulary(tokens: list[str], latin: int) -> list[int]:
    decode = byte_decoder()
    end_of_text = tokens.index("<|endoftext|>")
    no_timestamps = tokens.index("<|notimestamps|>")
    keep = []
    for i, token in enumerate(tokens):
        if i >= end_of_text:
            if i <= no_timestamps:  # task tokens; the transcripts use no timestamps
                keep.append(i)
            continue
        raw = bytes(decode[c] for c in token)
        text = text_core(raw)
        if len(raw) == 1:
            keep.append(i)
        elif text is None:
            continue
        elif any(c.isalpha() and ord(c) < 0x400 for c in text):
            if i < latin and text.isascii():
                keep.append(i)
        elif all(c.isascii() or 0x80 <= ord(c) < 0xC0 or 0x400 <= ord(c) < 0x530 for c in text):
            keep.append(i)
    return keep


def _copy(src: BinaryIO, dst: BinaryIO, fmt: str) -> int:
    raw = src.read(struct.calcsize(fmt))
    dst.write(raw)
    return int(struct.unpack(fmt, raw)[0])


def _copy_string(src: BinaryIO, dst: BinaryIO) -> str:
    size = _copy(src, dst, "H")
    raw = src.read(size)
    dst.write(raw)
    return raw[:-1].decode()


def write_pruned(model: Path, out: Path, keep: list[int]) -> None:
    """A copy of the CTranslate2 model with only these rows of the embedding (and so of
    the tied projection), its vocabulary and config renumbered to match."""
    out.mkdir(parents=True)
    rows = np.asarray(keep)
    with (model / "model.bin").open("rb") as src, (out / "model.bin").open("wb") as dst:
        _copy(src, dst, "I")  # format version
        _copy_string(src, dst)  # spec name
        _copy(src, dst, "I")  # revision
        for _ in range(_copy(src, dst, "I")):
            name = _copy_string(src, dst)
            (rank,) = struct.unpack("B", src.read(1))
            shape = list(struct.unpack(f"{rank}I", src.read(4 * rank)))
            (dtype,) = struct.unpack("B", src.read(1))
            (size,) = struct.unpack("I", src.read(4))
            data = src.read(size)
            if name == EMBEDDINGS:
                if dtype != FLOAT16:
                    raise SystemExit(f"{EMBEDDINGS} is not float16 in {model}")
                table = np.frombuffer(data, np.float16).reshape(shape)[rows]
                shape, data = list(table.shape), table.tobytes()
            dst.write(struct.pack(f"=B{rank}IBI", rank, *shape, dtype, len(data)))
            dst.write(data)
        shutil.copyfileobj(src, dst)  # the aliases
    tokens = (model / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    (out / "vocabulary.txt").write_text("".join(tokens[i] + "\n" for i in keep), encoding="utf-8")
    renumber = {old: new for new, old in enumerate(keep)}
    config = json.loads((model / "config.json").read_text())
    for key in ("suppress_ids", "suppress_ids_begin", "lang_ids"):
        config[key] = [renumber[i] for i in config[key] if i in renumber]
    (out / "config.json").write_text(json.dumps(config))


def main() -> None:
    import ctranslate2
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.feature_extractor import FeatureExtractor

    from transcriber.config import Settings
    from transcriber.media import stream_audio
    from transcriber.models import resolve

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("audio", type=Path)
    parser.add_argument("--latin", default="0,5000", help="comma-separated id bounds")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4, help="windows per call")
    args = parser.parse_args()

    model_dir = resolve("base", Settings().model_dir).path
    if model_dir is None:
        raise SystemExit("Whisper base is not installed (see README)")
    tokens = (model_dir / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    audio = np.concatenate(list(stream_audio(args.audio)))
    size = 30 * 16000
    fe = FeatureExtractor()
    features = np.stack(
        [pad_or_trim(fe(audio[i : i + size])[..., :-1]) for i in range(0, len(audio), size)]
    )

    def load(path: Path) -> Any:
        return ctranslate2.models.Whisper(str(path), compute_type="int8", intra_threads=1)

    full = load(model_dir)
    encoded = [
        np.asarray(full.encode(ctranslate2.StorageView.from_array(features[i : i + args.batch])))
        for i in range(0, len(features), args.batch)
    ]
    task = ("<|startoftranscript|>", "<|ru|>", "<|transcribe|>", "<|notimestamps|>")
    prompt = [tokens.index(t) for t in task]

    def decode(model: Any, keep: list[int] | None) -> tuple[float, list[list[int]]]:
        ids = prompt if keep is None else [keep.index(t) for t in prompt]
        out: list[list[int]] = []
        started = time.perf_counter()
        for part in encoded:
            view = ctranslate2.StorageView.from_array(part)
            results = model.generate(view, [ids] * len(part), beam_size=5)
            out += [r.sequences_ids[0] for r in results]
        seconds = time.perf_counter() - started
        return seconds, out if keep is None else [[keep[t] for t in s] for s in out]

    with tempfile.TemporaryDirectory() as tmp:
        copies = []
        for bound in (int(x) for x in args.latin.split(",")):
            keep = russian_vocabulary(tokens, bound)
            path = Path(tmp) / f"latin{bound}"
            write_pruned(model_dir, path, keep)
            copies.append((f"{len(keep)} words (Latin below id {bound})", load(path), keep))
        for r in range(args.rounds):
            base_s, base_out = decode(full, None)
            print(f"round {r + 1}: full vocabulary ({len(tokens)} words) {base_s:.2f} s")
            for label, model, keep in copies:
                seconds, out = decode(model, keep)
                same = sum(a == b for a, b in zip(base_out, out, strict=True))
                print(f"  {label}: {seconds:.2f} s, {base_s / seconds:.2f}x faster,"
                      f" same words in {same}/{len(out)} windows")  # fmt: skip


if __name__ == "__main__":
    main()
