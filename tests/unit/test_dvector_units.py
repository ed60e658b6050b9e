"""The d-vector method (TRANSCRIBER_DIARIZATION_METHOD=dvector) on hand-made data:
resemblyzer's weights, mel features, the numpy LSTM, streamed windows, and k-means with
its count rule."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest

from transcriber.diarization import SpeakerCount, Turn, encoder, features, torch_pickle
from transcriber.diarization import cluster as clustering
from transcriber.diarization.dvector import turns_from_embeddings
from transcriber.diarization.embed import Embeddings, SpeakerEmbedder, window_starts
from transcriber.diarization.encoder import INSTALL_HINT
from transcriber.diarization.timeline import make_turns
from transcriber.errors import ModelError
from transcriber.media.vad import Region
from transcriber.media.windows import SpeechWindow


def real_weights() -> Path:
    try:
        return encoder.weights_path()
    except ModelError:
        if os.environ.get("CI"):
            pytest.fail(f"resemblyzer weights are missing in CI: {INSTALL_HINT}")
        pytest.skip(f"resemblyzer weights are not installed ({INSTALL_HINT})")


def test_reads_the_real_resemblyzer_weights() -> None:
    state = torch_pickle.load_state_dict(real_weights())
    assert state["lstm.weight_ih_l0"].shape == (1024, 40)
    for k in range(3):
        assert state[f"lstm.weight_hh_l{k}"].shape == (1024, 256)
        assert state[f"lstm.bias_ih_l{k}"].shape == (1024,)
    assert state["linear.weight"].shape == (256, 256)
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in state.values())


def test_missing_weights_say_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoder.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError) as e:
        encoder.weights_path()
    assert "pip install --no-deps resemblyzer==0.1.4" in e.value.message.splitlines()


# ---------------------------------------------------------------- features and network


def test_mel_filterbank_is_slaney() -> None:
    fb = features.mel_filterbank()
    assert fb.shape == (40, 201) and (fb >= 0).all()
    peaks = fb.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all() and peaks[-1] > 150
    # Slaney normalisation: every triangle has unit area on the Hz axis.
    areas = fb.sum(axis=1) * (16000 / 400)
    np.testing.assert_allclose(areas[10:], 1.0, rtol=0.05)


def test_mel_spectrogram_of_a_tone() -> None:
    t = np.arange(16000) / 16000
    tone = (0.1 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    mel = features.mel_spectrogram(tone)
    assert mel.shape == (1 + 16000 // 160, 40) and mel.dtype == np.float32
    centres = features._mel_to_hz(np.linspace(0, features._hz_to_mel(np.array([8000.0]))[0], 42))
    assert abs(centres[1:-1][mel[50].argmax()] - 1000) < 120
    # power: twice the amplitude is four times the energy
    np.testing.assert_allclose(features.mel_spectrogram(2 * tone)[50], 4 * mel[50], rtol=1e-4)
    level = features.normalise_level(np.stack([mel[:40], 9 * mel[:40]]))
    np.testing.assert_allclose(level.mean(axis=(1, 2)), features.SPEECH_LEVEL, rtol=1e-5)


def _naive_lstm(mels: np.ndarray, w: encoder.EncoderWeights) -> np.ndarray:
    x = mels.astype(np.float64)
    for layer in w.layers:
        h = np.zeros((len(x), encoder.HIDDEN))
        c = np.zeros_like(h)
        outs = []
        for t in range(x.shape[1]):
            g = x[:, t] @ layer.w_ih + h @ layer.w_hh + layer.bias
            i, f, o = (1 / (1 + np.exp(-g[:, k * 256 : (k + 1) * 256])) for k in range(3))
            c = f * c + i * np.tanh(g[:, 768:])
            h = o * np.tanh(c)
            outs.append(h)
        x = np.stack(outs, axis=1)
    raw = np.maximum(h @ w.linear_w + w.linear_b, 0)
    out: np.ndarray = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    return out


def test_vectorised_lstm_matches_the_step_by_step_one() -> None:
    rng = np.random.default_rng(0)

    def m(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.1).astype(np.float32)

    layers = tuple(encoder._Layer(m(n_in, 1024), m(256, 1024), m(1024)) for n_in in (40, 256, 256))
    w = encoder.EncoderWeights(layers, m(256, 256), np.abs(m(256)) + 0.1)
    mels = np.abs(m(4, 23, 40))
    got = encoder.embed(mels, w)
    np.testing.assert_allclose(got, _naive_lstm(mels, w), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_window_starts_tile_a_piece() -> None:
    assert window_starts(100, 150, 75) == [0]
    assert window_starts(300, 150, 75) == [0, 75, 150]
    assert window_starts(310, 150, 75) == [0, 75, 150, 160]


def test_streamed_embeddings_do_not_depend_on_chunking() -> None:
    weights = encoder.load_weights(real_weights())
    rng = np.random.default_rng(3)
    audio = (rng.standard_normal(16000 * 12) * 0.05).astype(np.float32)
    regions = [
        Region(8000, 16000 * 5),
        Region(16000 * 6, 16000 * 6 + 3000),
        Region(16000 * 8, 16000 * 12),
    ]

    def run(step: int) -> Embeddings:
        e = SpeakerEmbedder(time_offset=2.0, weights=weights)
        for i in range(0, len(audio), step):
            chunk = audio[i : i + step]
            done = [r for r in regions if i < r.end <= i + len(chunk)]
            e.feed(chunk, done)
            assert len(e._buf) <= 16000 * 6, "the embedder kept audio it no longer needs"
        return e.finish()

    a, b = run(16000), run(7777)
    np.testing.assert_allclose(a.vectors, b.vectors, atol=1e-5)
    np.testing.assert_allclose(a.spans, b.spans)
    assert a.spans[0, 0] == pytest.approx(2.5) and a.spans[-1, 1] == pytest.approx(14.0)
    assert len(set(a.pieces.tolist())) == 2  # the 0.19 s region is too short to embed
    window = SpeechWindow(audio[8000 : 16000 * 5], ((0.0, 2.5),), 7.0)
    e = SpeakerEmbedder(weights=weights)
    e.add_window(window)
    np.testing.assert_allclose(e.finish().vectors, a.vectors[a.pieces == 0], atol=1e-5)


def test_a_long_region_is_embedded_as_it_arrives() -> None:
    weights = encoder.load_weights(real_weights())
    rng = np.random.default_rng(4)
    audio = (rng.standard_normal(16000 * 42) * 0.05).astype(np.float32)
    e = SpeakerEmbedder(weights=weights)
    region = [Region(16000, 16000 * 42)]  # known up front, as when no VAD cuts the stream
    peak = 0
    for i in range(0, len(audio), 80000):
        e.feed(audio[i : i + 80000], region)
        region = []
        peak = max(peak, len(e._buf))
    emb = e.finish()
    assert peak <= 16000 * 36, "a long region was held whole instead of embedded in parts"
    assert set(emb.pieces.tolist()) == {0}
    assert emb.spans[0, 0] == pytest.approx(1.0) and emb.spans[-1, 1] == pytest.approx(42.0)
    assert np.all(np.diff(emb.spans[:, 0]) > 0)


# ---------------------------------------------------------------- clustering


def _conversation(
    speakers: int, turns: int, noise: float = 0.8, spread: float = 0.5, seed: int = 0
) -> Embeddings:
    """Synthetic d-vectors like real ones: a window is about 0.85 cosine from its speaker's
    mean; speakers' means are about 0.8 apart; turns of 4-9 windows, one piece each."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal(256)
    means = [base + spread * rng.standard_normal(256) for _ in range(speakers)]
    vectors, pieces = [], []
    for turn in range(turns):
        who = turn % speakers
        for _ in range(int(rng.integers(4, 10))):
            vectors.append(means[who] + noise * rng.standard_normal(256))
            pieces.append(turn)
    v = clustering._unit(np.array(vectors)).astype(np.float32)
    spans = np.array([(0.75 * i, 0.75 * (i + 1)) for i in range(len(v))])
    return Embeddings(v, spans, np.array(pieces), np.ones(len(v), bool))


@pytest.mark.parametrize("speakers", [1, 2, 3])
def test_clustering_finds_the_number_of_speakers(speakers: int) -> None:
    emb = _conversation(speakers, turns=3 * speakers + 2)
    labels, centres = clustering.cluster(emb.vectors, emb.pieces)
    assert len(set(labels.tolist())) == speakers == len(centres)
    truth = np.repeat(np.arange(len(set(emb.pieces.tolist()))) % speakers, np.bincount(emb.pieces))
    agree = max(
        np.mean(np.array(perm)[labels] == truth) for perm in itertools.permutations(range(speakers))
    )
    assert agree > 0.9


def test_one_voice_that_drifts_stays_one_speaker() -> None:
    # Two blocks that never come back to each other: another take, not a dialogue.
    drift = _conversation(2, turns=2, spread=0.4)
    cos = clustering.centroids(drift.vectors, drift.pieces)
    assert clustering.DISTINCT_VOICE < float(cos[0] @ cos[1]) < clustering.SAME_VOICE
    assert len(set(clustering.cluster(drift.vectors, drift.pieces)[0].tolist())) == 1
    # The same two voices taking turns are two speakers.
    talk = _conversation(2, turns=6, spread=0.4)
    assert len(set(clustering.cluster(talk.vectors, talk.pieces)[0].tolist())) == 2


def test_speaker_count_options_are_honoured() -> None:
    one = _conversation(1, turns=6)
    two = _conversation(2, turns=8)
    n = lambda turns: len({t.speaker for t in turns})  # noqa: E731
    assert n(turns_from_embeddings(one, SpeakerCount.of(num_speakers=2))) == 2
    assert n(turns_from_embeddings(one, SpeakerCount.of(min_speakers=3))) == 3
    assert n(turns_from_embeddings(two, SpeakerCount.of(max_speakers=1))) == 1
    assert n(turns_from_embeddings(two, SpeakerCount.of(min_speakers=1, max_speakers=4))) == 2
    assert turns_from_embeddings(Embeddings.empty()) == []


def test_window_turns_merge_and_are_named_by_first_appearance() -> None:
    spans = np.array([(0, 1), (1, 2), (2, 3), (5, 6), (6, 7)], dtype=float)
    turns = make_turns(spans, [4, 4, 1, 1, 4])
    assert turns == [Turn(0, 2, "A"), Turn(2, 3, "B"), Turn(5, 6, "B"), Turn(6, 7, "A")]
