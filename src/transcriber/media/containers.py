"""What a file's own bytes say about its length, where ffmpeg does not tell.

ffmpeg believes a container's header: a WAV's stated data size, an Ogg's last
granule, an mp3's bitrate. A file cut off, written by a recorder that stopped before
it finished its header, or two files joined with `cat` then decodes to less than it
holds, and nothing says so. These readers look at the structure (WAV chunks, Ogg
pages, an mp3's frame-count header) so that decode.py can read everything there is,
or say what was not read.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av

from transcriber.domain import Notice, NoticeCode
from transcriber.errors import NotMediaError, TruncatedMediaError

# Bytes past a WAV's stated data that are not a chunk are audio the header left out
# when they add up to at least this much sound; less is stray padding.
_OVERFLOW_MIN_S = 1.0
# How far from the end of an Ogg file its last page header is looked for (a page holds
# at most 65,307 bytes).
_OGG_TAIL = 65_536 + 4096
_OGG_EOS = 0x04  # header_type flag of a logical stream's last page


def wav_chunks(f: BinaryIO, size: int) -> Iterator[tuple[bytes, int, int]]:
    """Each chunk of a WAVE file open as `f` (`size` bytes long): its id, the offset of
    its header and its stated length; nothing if `f` is not a WAV."""
    f.seek(0)
    if f.read(12)[8:12] != b"WAVE":  # RIFF, or RF64 and its kin
        return
    pos = 12
    while pos + 8 <= size:
        f.seek(pos)
        cid, length = struct.unpack("<4sI", f.read(8))
        yield cid, pos, length
        pos += 8 + length + (length & 1)


# ffmpeg's raw sample format for each (format tag, bits per sample) of WAV samples; its
# demuxer is named with the byte order after it (s16be, f32le), except for single bytes.
_RAW_SAMPLES = {(1, 8): "u8", (1, 16): "s16", (1, 24): "s24", (1, 32): "s32", (3, 32): "f32",
                (3, 64): "f64"}  # fmt: skip


def _raw_demuxer(tag: int, bits: int, big_endian: bool) -> str | None:
    samples = _RAW_SAMPLES.get((tag, bits))
    if samples is None or bits == 8:
        return samples
    return samples + ("be" if big_endian else "le")


_EXTENSIBLE = 0xFFFE  # WAVE_FORMAT_EXTENSIBLE: the format is in the subformat's GUID


@dataclass(frozen=True, slots=True)
class RawPcm:
    """Where a WAV's samples are and how they are stored, for a raw demuxer."""

    demuxer: str  # ffmpeg's raw demuxer for them (s16be, f32be, s32le, ...)
    rate: int
    channels: int
    start: int  # first byte of the data chunk's samples
    end: int  # the byte after the last whole sample frame
    big_endian: bool  # a RIFX file
    more: tuple[tuple[int, int], ...] = ()  # further data chunks' samples, (start, end)


def raw_wav_pcm(path: Path) -> RawPcm | None:
    """The layout of a WAV whose samples ffmpeg misreads, so that decode.py reads them
    with a raw demuxer instead; None for any other file:

    - RIFX, a WAV with its numbers big-endian, as some Mac, Sun and DAW tools write it:
      ffmpeg reads its header but decodes its samples as little-endian, which turns
      speech into loud noise (and the transcript into nothing).
    - WAVE_FORMAT_EXTENSIBLE with samples stored wider than their valid bits (24 valid
      bits in 32, as Windows capture and audio interfaces write): ffmpeg sizes the
      samples by the valid bits, and decodes NaN noise or refuses the codec.
    - A chunk of odd size before the data written without the pad byte RIFF asks for
      (a LIST or bext chunk from some tagging and recording tools): ffmpeg looks for the
      next chunk one byte on, misses the data chunk and refuses the file.
    - More than one data chunk (a recorder or an editor that appends a block of samples
      as a chunk of its own): ffmpeg reads the last one only, so the audio before it is
      silently lost. The chunks are read in turn.

    Raises NotMediaError for a RIFX file this cannot read, naming why."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(12)
        if head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return None
        big = head[:4] == b"RIFX"
        o = ">" if big else "<"
        fmt = b""
        pos = 12
        unpadded = False  # a chunk before the data was written without its pad byte
        while pos + 8 <= size:
            f.seek(pos)
            cid, length = struct.unpack(o + "4sI", f.read(8))
            if cid == b"fmt ":
                fmt = f.read(min(length, 40))
            elif cid == b"data":
                break
            pos += 8 + length
            if length & 1:
                f.seek(pos)
                after = f.read(9)
                if big or not _is_chunk_header(after[:8], pos, size):
                    pos += 1
                elif not _is_chunk_header(after[1:], pos + 1, size):
                    unpadded = True
        else:
            if not big:
                return None  # ffmpeg's to read or refuse
            raise NotMediaError(f"{path}: a big-endian WAV (RIFX) with no audio data chunk")
    if len(fmt) < 16:
        if not big:
            return None
        raise NotMediaError(f"{path}: a big-endian WAV (RIFX) whose format chunk is missing")
    tag, channels, rate, _, _, bits = struct.unpack(o + "HHIIHH", fmt[:16])
    valid = bits
    extensible = tag == _EXTENSIBLE and len(fmt) >= 26
    if extensible:  # its valid bits, and the format code that leads its subformat
        valid, _, tag = struct.unpack(o + "HIH", fmt[18:26])
    # ffmpeg sizes the samples by their valid bits, rounded up to whole bytes.
    mis_sized = extensible and valid > 0 and (valid + 7) // 8 * 8 != bits
    frame = max(1, channels) * max(1, bits // 8)
    with path.open("rb") as f:
        more = _more_data(f, o, pos, length, size, frame)
    if not big and not mis_sized and not unpadded and not more:
        return None
    demuxer = _raw_demuxer(tag, bits, big)
    if demuxer is None:
        if not big:
            return None
        raise NotMediaError(
            f"{path}: a big-endian WAV (RIFX) of format {tag} at {bits} bits per sample,"
            " which this service cannot read; convert it to a little-endian WAV or FLAC"
        )
    if channels < 1:
        raise NotMediaError(f"{path}: the audio header is damaged: it claims 0 channels")
    start = pos + 8
    # A recorder that stopped early leaves 0 or a size past the end: read what is there.
    stated = start + length if length not in (0, 0xFFFFFFFF) else size
    end = start + (min(stated, size) - start) // frame * frame
    return RawPcm(demuxer, rate, channels, start, end, big, more)


def _more_data(
    f: BinaryIO, o: str, pos: int, length: int, size: int, frame: int
) -> tuple[tuple[int, int], ...]:
    """The samples (start, end) of the data chunks that follow the one whose header is
    at `pos` (`length` bytes long), chunk after chunk to the first that is not one."""
    found: list[tuple[int, int]] = []
    if length in (0, 0xFFFFFFFF):
        return ()
    pos += 8 + length
    while pos + 8 <= size:
        at = pos + (length & 1)  # the pad byte after a chunk of odd size
        f.seek(at)
        header = f.read(8)
        if not _is_chunk_header(header[:4] + header[4:8][:: 1 if o == "<" else -1], at, size):
            break
        cid, length = struct.unpack(o + "4sI", header)
        if cid == b"data" and length >= frame:
            found.append((at + 8, at + 8 + length // frame * frame))
        pos = at + 8 + length
    return tuple(found)


def check_wav_size(path: Path) -> None:
    """A WAV header states its data size exactly; a file short of it by more than other
    containers may be (max(1 s, 5%), `decode._check_complete`) was cut off. A recorder
    that wrote its last block short, or a tool that cut one sample, loses nothing more."""
    size = path.stat().st_size
    rate = 0  # bytes per second, from the fmt chunk
    with path.open("rb") as f:
        for cid, pos, length in wav_chunks(f, size):
            if cid == b"fmt ":
                rate = struct.unpack("<8xI", f.read(12))[0]
            if cid == b"data":
                if length in (0, 0xFFFFFFFF):  # written by a streaming muxer: unknown
                    return
                missing = pos + 8 + length - size
                allowed = max(rate, 0.05 * length) if rate > 0 else 1
                if missing > allowed:
                    have = size - pos - 8
                    raise TruncatedMediaError(
                        f"{path}: file is truncated: the WAV header promises {length} bytes"
                        f" of audio but only {have} are there ({have / length:.0%})"
                    )
                return


def wav_overflow_s(path: Path) -> float | None:
    """Seconds of audio a WAV file holds past the end its data chunk states, when what
    follows that end is not another chunk (a recorder that stopped before it wrote its
    final size, or a tool that wrote the first block's size only). ffmpeg stops at the
    stated end, so the rest would be dropped unread. None for any other file."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(4)
        if head != b"RIFF":  # RF64 states its sizes in a chunk of their own
            return None
        rate = 0  # bytes per second, from the fmt chunk
        for cid, pos, length in wav_chunks(f, size):
            if cid == b"fmt ":
                rate = struct.unpack("<8xI", f.read(12))[0]
            if cid != b"data":
                continue
            end = pos + 8 + length
            if length in (0, 0xFFFFFFFF) or rate <= 0 or size - end < _OVERFLOW_MIN_S * rate:
                return None
            # Zeros to the end of the file are space a recorder preallocated, after the
            # size it did write: the audio ends where the header says.
            last = data_end(path) or size
            if last - end < _OVERFLOW_MIN_S * rate:
                return None
            # The chunk after the data may start after a pad byte, or (a writer that
            # forgot it) right at the data's end.
            for at in {end + (length & 1), end}:
                f.seek(at)
                if _is_chunk_header(f.read(8), at, size):
                    return None
            return (last - end) / rate
    return None


def zeros_after_data(path: Path) -> int | None:
    """Where the zeros that fill the end of a WAV or CAF file begin, after its data chunk
    (space a recorder preallocated): ffmpeg walks what follows the data as chunks, and a
    run of zeros reads as empty chunks of 8 or 12 bytes each, so a gigabyte of them took
    minutes to open. None when the file does not end so, or is neither with a stated
    data size (one written to the end of the file: its zeros may be sound)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(12)
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            chunks = wav_chunks(f, size)
            for cid, pos, length in chunks:
                if cid == b"data":
                    if length in (0, 0xFFFFFFFF):
                        return None
                    stated = pos + 8 + length + (length & 1)
                    break
            else:
                return None
        elif head[:4] == b"caff":
            pos = 8
            while True:
                if pos + 12 > size:
                    return None
                f.seek(pos)
                cid, length = struct.unpack(">4sq", f.read(12))
                if cid == b"data":
                    if length < 0:
                        return None
                    stated = pos + 12 + length
                    break
                if length < 0:
                    return None
                pos += 12 + length
        else:
            return None
    end = max(stated, data_end(path) or size)
    return end if size - end >= _ZERO_TAIL_MIN else None


def _is_chunk_header(header: bytes, at: int, size: int) -> bool:
    """Whether these 8 bytes at offset `at` read as a RIFF chunk's id and a length that
    fits the file (PCM rarely does: four printable bytes and a plausible length)."""
    if len(header) < 8:
        return False
    cid, length = struct.unpack("<4sI", header)
    return all(0x20 <= c <= 0x7E for c in cid) and at + 8 + length <= size + 1


def joined_wav(path: Path) -> Notice | None:
    """A notice when a WAV file goes on, past the end of its data chunk, with another
    WAV file (`cat a.wav b.wav`): ffmpeg reads the first file's audio and stops, so the
    second is silently missing from the transcript otherwise. Chunks after the data
    (LIST, id3 and other metadata) and a few stray bytes are normal and say nothing."""
    size = path.stat().st_size
    rate = 0  # bytes per second, from the fmt chunk
    with path.open("rb") as f:
        for cid, pos, length in wav_chunks(f, size):
            if cid == b"fmt ":
                rate = struct.unpack("<8xI", f.read(12))[0]
            if cid != b"data":
                continue
            if length in (0, 0xFFFFFFFF):
                return None
            end = pos + 8 + length + (length & 1)
            f.seek(end)
            rest = f.read(1 << 16)
            at = rest.find(b"RIFF")
            if at < 0 or rest[at + 8 : at + 12] != b"WAVE":
                return None
            unread = size - end - at
            seconds = round(unread / rate, 1) if rate else None
            about = f" (about {seconds:g} s)" if seconds else ""
            return Notice(
                NoticeCode.unread_audio,
                f"another WAV file{about} follows the first one inside this file and"
                " was not transcribed; send it as a file of its own",
                {"bytes": unread, "seconds": seconds or 0.0, "kind": "WAV"},
            )
    return None


def ogg_cut_short(path: Path, decoded_s: float) -> Notice | None:
    """A notice when an Ogg file does not end with the last page of its stream: its
    last page is incomplete, or complete but not marked as the stream's end. A download
    that broke off or a recording that was never closed ends so. An Ogg's duration is
    read from its last page, so such a file looks whole to ffmpeg; what it holds was
    transcribed, and the reader should know the rest is missing. Zeros that fill the end
    of the file (a recorder's preallocated space) are not where the stream ends: its last
    page is looked for before them."""
    size = path.stat().st_size
    stop = data_end(path) or size
    with path.open("rb") as f:
        f.seek(max(0, stop - _OGG_TAIL))
        tail = f.read(min(size, stop + _OGG_TAIL) - max(0, stop - _OGG_TAIL))
    at = tail.rfind(b"OggS")
    if at < 0 or len(tail) < at + 27:
        return None
    segments = tail[at + 26]
    table = tail[at + 27 : at + 27 + segments]
    complete = len(table) == segments and at + 27 + segments + sum(table) <= len(tail)
    if complete and tail[at + 5] & _OGG_EOS:
        return None
    seconds = round(decoded_s, 1)
    why = "breaks off in the middle of a page" if not complete else "has no end-of-stream mark"
    return Notice(
        NoticeCode.cut_short,
        f"the file {why}, so it was probably cut short (a download or a recording that"
        f" stopped); the {seconds:g} s it holds were transcribed",
        {"seconds": seconds},
    )


_EBML_HEADER = 0x1A45DFA3
_MKV_SEGMENT = 0x18538067
_MKV_CLUSTER = 0x1F43B675


def matroska_cut_short(path: Path, decoded_s: float) -> Notice | None:
    """A notice when a Matroska/WebM file breaks off inside an element: a recording
    written as it is made (a browser's MediaRecorder, OBS) states no duration, so one
    cut short (a tab closed, a download or a crash that stopped it) looks whole to
    ffmpeg, which drops the broken block and says nothing. The file's elements are
    walked in order (a cluster of unknown size, as such writers leave it, block by
    block); None when the last one ends within the file, or the walk cannot tell."""
    size = path.stat().st_size
    with path.open("rb") as f:
        pos = 0
        while pos < size:
            f.seek(pos)
            head = f.read(12)
            element = _ebml_element(head)
            if element is None:
                if len(head) == 12:
                    return None  # not an element: the walk cannot tell
                break  # a header cut off by the end of the file
            eid, length, header = element
            if pos == 0 and eid != _EBML_HEADER:
                return None
            if eid in (_MKV_SEGMENT, _MKV_CLUSTER):
                pos += header  # into it: its children are walked in turn
                continue
            if length is None:
                return None  # only a segment or a cluster may have an unknown size
            pos += header + length
        if pos <= size:
            return None
    seconds = round(decoded_s, 1)
    return Notice(
        NoticeCode.cut_short,
        "the file breaks off in the middle of a block, so it was probably cut short (a"
        f" download or a recording that stopped); the {seconds:g} s it holds were"
        " transcribed",
        {"seconds": seconds},
    )


def _ebml_element(head: bytes) -> tuple[int, int | None, int] | None:
    """The id, data size (None: unknown) and header length of the EBML element whose
    header starts `head`; None where it does not start with a whole header."""
    if not head or head[0] < 0x10:  # an id is 1 to 4 bytes long
        return None
    id_len = 9 - head[0].bit_length()
    if len(head) <= id_len or head[id_len] == 0:
        return None
    size_len = 9 - head[id_len].bit_length()
    if len(head) < id_len + size_len:
        return None
    eid = int.from_bytes(head[:id_len], "big")
    data = int.from_bytes(head[id_len : id_len + size_len], "big") & ((1 << 7 * size_len) - 1)
    unknown = data == (1 << 7 * size_len) - 1
    return eid, None if unknown else data, id_len + size_len


# Boxes an MP4/MOV file starts with: a phone's, a camera's or an old QuickTime writer's.
_MP4_FIRST_BOXES = {b"ftyp", b"wide", b"free", b"skip", b"mdat"}


def mp4_index_missing(path: Path) -> bool:
    """Whether `path` is an MP4/MOV file with media data but no whole index (its moov box,
    which says where each sample is): what a phone or camera leaves when a recording is
    never finished (the app was killed, the battery died), and what a download or an
    upload cut short leaves of a file that keeps its index at the end. ffmpeg only says
    that the data is invalid."""
    size = path.stat().st_size
    kinds = []
    with path.open("rb") as f:
        pos = 0
        while pos + 8 <= size:
            f.seek(pos)
            length, kind = struct.unpack(">I4s", f.read(8))
            if length == 1:  # a 64-bit size follows
                length = struct.unpack(">Q", f.read(8))[0]
            elif length == 0:  # to the end of the file
                length = size - pos
            if length < 8 or not kind.isascii():
                break
            if kind == b"moov" and pos + length <= size:
                return False
            kinds.append(kind)
            pos += length
    return bool(kinds) and kinds[0] in _MP4_FIRST_BOXES and b"mdat" in kinds


def joined_mp4(path: Path) -> Notice | None:
    """A notice when an MP4/MOV file goes on, past its first file's index and media data,
    with another file (`cat a.m4a b.m4a`, a recorder's parts joined as bytes): ffmpeg
    reads the first file's index only, so the rest is silently missing from the
    transcript otherwise. The top-level boxes are walked: a file type box (ftyp) or a
    second index (moov) after the first moov and mdat starts another file; the further
    media data of a fragmented MP4 (moof and mdat boxes) does not."""
    size = path.stat().st_size
    seen: set[bytes] = set()
    start: int | None = None  # where the file after the first one starts
    seconds = 0.0  # the durations the later files' indexes state
    with path.open("rb") as f:
        pos = 0
        while pos + 8 <= size:
            f.seek(pos)
            length, kind = struct.unpack(">I4s", f.read(8))
            header = 8
            if length == 1:  # a 64-bit size follows
                length, header = struct.unpack(">Q", f.read(8))[0], 16
            elif length == 0:  # to the end of the file
                length = size - pos
            if length < header or not kind.isascii():
                break
            if start is None and {b"moov", b"mdat"} <= seen and kind in (b"ftyp", b"moov"):
                start = pos
            seen.add(kind)
            if start is not None and kind == b"moov":
                seconds += _mvhd_seconds(f.read(min(length - header, 4096)))
            pos += length
    if start is None:
        return None
    seconds = round(seconds, 1)
    about = f" (about {seconds:g} s)" if seconds else ""
    return Notice(
        NoticeCode.unread_audio,
        f"another MP4/MOV file{about} follows the first one inside this file and was not"
        " transcribed; send it as a file of its own",
        {"bytes": size - start, "seconds": seconds, "kind": "MP4/MOV"},
    )


def _mvhd_seconds(moov: bytes) -> float:
    """The duration a moov box's movie header (mvhd, its first child as writers put it)
    states, from the start of the box's contents; 0 where it has none."""
    at = moov.find(b"mvhd")
    if at < 4:
        return 0.0
    body = moov[at + 4 :]
    if body[:1] == b"\x01" and len(body) >= 32:  # version 1: 64-bit times
        scale, length = struct.unpack(">IQ", body[20:32])
    elif len(body) >= 20:
        scale, length = struct.unpack(">II", body[12:20])
    else:
        return 0.0
    return length / scale if scale else 0.0


def caf_cut_short(path: Path) -> str | None:
    """Why a CAF file (Apple's Core Audio Format: iPhone recordings, Logic, GarageBand)
    that ffmpeg refused cannot be read, when it is cut short: a chunk that states more
    bytes than are left, or compressed audio (AAC, ALAC: packets of varying size) with no
    packet table, the pakt chunk that says where each packet is and that writers put
    after the audio. None for any other file."""
    size = path.stat().st_size
    with path.open("rb") as f:
        if f.read(8)[:4] != b"caff":
            return None
        pos, vbr, pakt = 8, False, False
        while pos + 12 <= size:
            f.seek(pos)
            kind, length = struct.unpack(">4sq", f.read(12))
            if kind == b"desc":
                desc = f.read(32)
                vbr = len(desc) == 32 and 0 in struct.unpack(">II", desc[12:20])
            pakt = pakt or kind == b"pakt"
            if length < 0:  # the data chunk of a writer that could not seek back: to the end
                break
            if pos + 12 + length > size:
                name = kind.decode("latin-1").strip()
                return (
                    f"its {name} chunk states {length} bytes but only {size - pos - 12} are there"
                )
            pos += 12 + length
    if vbr and not pakt:
        return (
            "it has no packet table (the pakt chunk, written after the audio, which says"
            " where each packet of it is)"
        )
    return None


def id3_tags_inside(path: Path) -> list[tuple[int, int]]:
    """The byte ranges (start, end) of the ID3v2 tags in an mp3 file, its leading one and
    any further in: mp3 files joined end to end (`cat`, audiobook chapters, a recorder's
    parts) bring a tag each, cover art and all. ffmpeg skips only the leading tag and
    reads the others as audio frames that fail to decode: a false "damaged" notice, and
    for a picture of a few hundred KB enough bad frames to refuse the whole file."""
    tags = []
    block = 1 << 20
    size = path.stat().st_size
    with path.open("rb") as f:
        at = 0
        while True:
            f.seek(at)
            data = f.read(block + 9)  # a header across the block's end is found whole
            i = data.find(b"ID3")
            while 0 <= i < block:
                end = _id3_end(data[i : i + 10])
                if end is not None and at + i + end <= size:
                    tags.append((at + i, at + i + end))
                i = data.find(b"ID3", i + 1)
            if len(data) <= block:
                return tags
            at += block


def _id3_end(header: bytes) -> int | None:
    """The length of the ID3v2 tag whose 10-byte header this is; None if it is not one."""
    if len(header) < 10 or header[3] not in (2, 3, 4) or header[4] == 0xFF:
        return None
    if any(b & 0x80 for b in header[6:10]):  # a syncsafe size: 7 bits a byte
        return None
    size = 0
    for byte in header[6:10]:
        size = (size << 7) | byte
    return 10 + size + (10 if header[5] & 0x10 else 0)  # and a footer, if flagged


def mp3_length(path: Path, rate: int) -> float | None:
    """Seconds an mp3 says it holds, from the frame count in its first frame (a Xing or
    Info header, as LAME and ffmpeg write, or a VBRI one); None when it has none. Without
    one, an mp3's duration is an estimate from its bitrate, which VBR makes unreliable."""
    with path.open("rb") as f:
        head = f.read(10)
        skip = 0
        if head[:3] == b"ID3" and len(head) == 10:  # an ID3v2 tag: a syncsafe size
            size = 0
            for byte in head[6:10]:
                size = (size << 7) | (byte & 0x7F)
            skip = 10 + size + (10 if head[5] & 0x10 else 0)
        f.seek(skip)
        data = f.read(8192)
    sync = next(
        (i for i in range(len(data) - 4) if data[i] == 0xFF and data[i + 1] & 0xE0 == 0xE0),
        None,
    )
    if sync is None or rate <= 0:
        return None
    version, layer = (data[sync + 1] >> 3) & 3, (data[sync + 1] >> 1) & 3
    per_frame = {3: 384, 2: 1152}.get(layer, 1152 if version == 3 else 576)
    frame = data[sync : sync + 64]  # the tag follows the header and the side information
    for tag in (b"Xing", b"Info"):
        at = frame.find(tag, 4)
        if at >= 0 and len(frame) >= at + 12:
            flags = int.from_bytes(frame[at + 4 : at + 8], "big")
            if not flags & 1:  # no frame count in this header
                return None
            frames = int.from_bytes(frame[at + 8 : at + 12], "big")
            return frames * per_frame / rate
    if frame[36:40] == b"VBRI" and len(frame) >= 54:
        return int.from_bytes(frame[50:54], "big") * per_frame / rate
    return None


# The window of bytes `frames_end` tries to decode at each step: more than any one frame
# of the bitrate-estimated formats (an ADTS frame is at most 8 KB).
_FRAME_WINDOW = 1 << 15


def frames_end(path: Path, demuxer: str) -> int | None:
    """Where the last audio frame of a raw stream (mp3, ADTS AAC, AC-3...) ends, when the
    file goes on past it with bytes that are not frames: zeros that a voice recorder or
    an app preallocated and never filled, or other junk. ffmpeg estimates such a stream's
    duration from its bitrate and the file's size, so 11 s of audio in a preallocated
    20 MB file reads as two hours. None when the file ends in frames.

    The frames are found by decoding a window of bytes at a time (ffmpeg's own parser,
    so any format it reads): the last window, then a binary search between the start of
    the audio and the end, a few dozen small reads however large the file."""
    size = path.stat().st_size
    tail = max(0, size - _FRAME_WINDOW)
    if _window_end(path, demuxer, tail, size) is not None:
        return None
    lo, hi = _audio_start(path), tail  # frames start at lo; none from hi on
    if hi <= lo:
        return None
    while hi - lo > _FRAME_WINDOW // 2:
        mid = (lo + hi) // 2
        if _window_end(path, demuxer, mid, min(size, mid + _FRAME_WINDOW)) is not None:
            lo = mid
        else:
            hi = mid
    return _window_end(path, demuxer, lo, min(size, lo + 2 * _FRAME_WINDOW))


def _audio_start(path: Path) -> int:
    """Where a raw stream's frames begin: after a leading ID3v2 tag, if it has one."""
    with path.open("rb") as f:
        head = f.read(10)
    end = _id3_end(head) if head[:3] == b"ID3" else None
    return end or 0


def _window_end(path: Path, demuxer: str, start: int, end: int) -> int | None:
    """The end of the last frame that decodes in bytes [start, end) of `path` read as
    `demuxer`; None when fewer than two frames there decode (one may be chance)."""
    url = f"subfile,,start,{start},end,{end},,:file:{path}"
    last, good = None, 0
    try:
        with av.open(url, format=demuxer, options={"protocol_whitelist": "subfile,file"}) as c:
            if not c.streams.audio:
                return None
            for packet in c.demux(c.streams.audio[0]):
                if not packet.size:
                    continue
                try:
                    if not packet.decode():
                        continue
                except av.FFmpegError:
                    continue
                good += 1
                if packet.pos is not None and packet.pos >= 0:
                    last = start + packet.pos + packet.size
    except av.FFmpegError:
        return None
    return last if good >= 2 else None


# Zeros at the end of a file shorter than this are left to the demuxer (a writer's
# padding); longer, they are space a recorder preallocated and never filled.
_ZERO_TAIL_MIN = 1 << 16
_ZERO_BLOCK = 4096


def zeros_from(path: Path) -> int | None:
    """Where a run of zero bytes that fills the end of the file begins, when it is longer
    than a writer's padding: what a voice recorder or an app that preallocates its file
    leaves when it stops early. Demuxers read such a tail as broken data (an Ogg stream
    breaks off as damaged at its end) or as audio (a duration of hours). None when there
    is none. The offset returned leaves a block of the zeros on: a frame may end in zeros
    of its own (a WavPack block does), and demuxers pass over a block as over padding."""
    size = path.stat().st_size
    end = data_end(path)
    if end is None or size - end < _ZERO_TAIL_MIN:
        return None
    return end + _ZERO_BLOCK


def data_end(path: Path) -> int | None:
    """The offset after the last byte that is not zero, when a run of zeros fills the
    end of the file (the file's size when it does not end in zeros; None when it is all
    zeros, or the run cannot be told from zeros inside the data). Found by a binary
    search over blocks (compressed audio and containers never hold a block of zeros),
    then checked at blocks spread over the run: a few dozen reads however large."""
    size = path.stat().st_size
    with path.open("rb") as f:

        def zero(at: int, n: int = _ZERO_BLOCK) -> bool:
            f.seek(at)
            return not any(f.read(n))

        f.seek(max(0, size - _ZERO_BLOCK))
        last = f.read()
        if last.rstrip(b"\0") or size <= _ZERO_BLOCK:
            end = len(last.rstrip(b"\0"))
            return size - len(last) + end if end else None
        lo, hi = 0, size - _ZERO_BLOCK  # data at lo; zeros from hi on
        if zero(lo):
            return None
        while hi - lo > _ZERO_BLOCK:
            mid = (lo + hi) // 2
            if zero(mid):
                hi = mid
            else:
                lo = mid
        f.seek(lo)
        end = lo + len(f.read(hi - lo + _ZERO_BLOCK).rstrip(b"\0"))
        spread = range(end, size - _ZERO_BLOCK, max(_ZERO_BLOCK, (size - end) // 16))
        return end if all(zero(at) for at in spread) else None
