"""AssemblyAI's transcript shapes made from this service's transcripts (no server)."""

from __future__ import annotations

from datetime import UTC, datetime

from transcriber.api import assemblyai as aai
from transcriber.domain import Segment, Transcript, Word
from transcriber.jobs.record import TaskRecord
from transcriber.jobs.status import TaskStatus


def seg(i: int, words: list[tuple[float, float, str]], speaker: str | None = None) -> Segment:
    ws = tuple(Word(a, b, f" {w}", 0.9, speaker) for a, b, w in words)
    text = " ".join(w for _, _, w in words)
    return Segment(i, words[0][0], words[-1][1], text, ws, speaker)


TWO_SPEAKERS = Transcript(
    segments=(
        seg(
            1,
            [(0.0, 0.4, "Привет,"), (0.4, 0.9, "как"), (0.9, 1.3, "дела?"), (1.4, 2.0, "Ёлки!")],
            "A",
        ),
        seg(2, [(2.5, 3.0, "Хорошо."), (3.1, 3.6, "Спасибо.")], "B"),
        seg(3, [(8.0, 8.5, "Снова"), (8.5, 9.0, "я.")], "B"),
    ),
    language="ru",
    language_probability=0.97,
    duration=9.04,
    model="base",
)


def test_words_are_milliseconds_with_speaker_letters() -> None:
    ws = aai.words(TWO_SPEAKERS)
    assert [w.text for w in ws][:3] == ["Привет,", "как", "дела?"]
    assert (ws[0].start, ws[0].end, ws[0].speaker, ws[0].channel) == (0, 400, "A", None)
    assert ws[-1].as_dict() == {"text": "я.", "start": 8500, "end": 9000, "confidence": 0.9,
                                "speaker": "B", "channel": None}  # fmt: skip


def test_utterances_follow_speaker_turns() -> None:
    turns = aai.utterances(aai.words(TWO_SPEAKERS))
    assert [(u["speaker"], u["start"], u["end"]) for u in turns] == [
        ("A", 0, 2000),
        ("B", 2500, 9000),
    ]
    assert turns[1]["text"] == "Хорошо. Спасибо. Снова я." and len(turns[1]["words"]) == 4


def test_sentences_cut_at_punctuation_and_speaker_change() -> None:
    texts = [" ".join(w.text for w in s) for s in aai.sentences(aai.words(TWO_SPEAKERS))]
    assert texts == ["Привет, как дела?", "Ёлки!", "Хорошо.", "Спасибо.", "Снова я."]


def test_paragraphs_break_at_speaker_change_and_long_pause() -> None:
    paras = aai.paragraphs(aai.words(TWO_SPEAKERS))
    assert [" ".join(w.text for w in p) for p in paras] == [
        "Привет, как дела? Ёлки!", "Хорошо. Спасибо.", "Снова я.",
    ]  # fmt: skip


def test_word_search_finds_words_and_phrases_case_and_yo_blind() -> None:
    found = aai.word_search("t1", aai.words(TWO_SPEAKERS), ["елки", "КАК ДЕЛА", "нет"])
    assert found["total_count"] == 2
    assert found["matches"] == [
        {"text": "елки", "count": 1, "timestamps": [[1400, 2000]], "indexes": [3]},
        {"text": "КАК ДЕЛА", "count": 1, "timestamps": [[400, 1300]], "indexes": [1]},
    ]


def test_split_channels_become_channel_and_speaker() -> None:
    assert aai.speaker_and_channel("channel 2") == ("B", "2")
    assert aai.speaker_and_channel("A") == ("A", None)
    assert aai.speaker_and_channel(None) == (None, None)


def test_segments_without_word_timings_still_give_timed_words() -> None:
    t = Transcript((Segment(1, 10.0, 12.0, "один два", avg_logprob=-0.1),), "ru", 1.0, 12.0)
    ws = aai.words(t)
    assert [w.text for w in ws] == ["один", "два"]
    assert ws[0].start == 10000 and ws[-1].end == 12000 and ws[0].end <= ws[1].start
    assert 0.9 < ws[0].confidence < 0.91


def record(status: TaskStatus, webhook_status: int | None = 200, **options: object) -> TaskRecord:
    t = datetime(2026, 11, 24, tzinfo=UTC)
    return TaskRecord(
        id="t1", owner="", status=status, stage=None, progress=0.0, audio_done=0.0,
        filename="a.wav", input_key="t1/input", options=dict(options), duration=9.04,
        language=None, error="a.wav: damaged" if status == TaskStatus.failed else None,
        attempts=1, claim=None, result_key=None, processing_time=None,
        created_at=t, started_at=None, finished_at=None, webhook_status=webhook_status,
    )  # fmt: skip


def test_transcript_body_states() -> None:
    hook = {"url": "https://example.org/h", "header_name": "X-Key", "header_value": "s"}
    queued = aai.transcript_body(
        record(TaskStatus.queued, language=None, diarize=True, webhook=hook,
               assemblyai={"audio_url": "https://media.example.org/a.wav"}),
        None, "http://svc", "base",
    )  # fmt: skip
    assert queued["status"] == "queued" and queued["text"] is None
    assert queued["audio_url"] == "https://media.example.org/a.wav"
    assert queued["language_detection"] and queued["speaker_labels"]
    assert queued["webhook_auth"] and queued["webhook_status_code"] == 200
    assert "s" not in queued.values()  # the header's value is never shown
    failed = aai.transcript_body(
        record(TaskStatus.failed, language="ru"), None, "http://svc", "base"
    )
    assert (failed["status"], failed["error"]) == ("error", "a.wav: damaged")
    assert failed["webhook_status_code"] is None  # no webhook was asked for
    assert failed["audio_url"] == "http://svc/api/tasks/t1/media"
    done = aai.transcript_body(record(TaskStatus.completed, language=None, diarize=True),
                               TWO_SPEAKERS, "http://svc", "base")  # fmt: skip
    assert done["text"].startswith("Привет, как дела?") and done["language_code"] == "ru"
    assert done["language_confidence"] == 0.97 and done["audio_duration"] == 9
    assert len(done["utterances"]) == 2 and done["confidence"] == 0.9


def test_webhook_status_code_is_0_when_the_receiver_never_answered() -> None:
    hook = {"url": "https://example.org/h"}
    unreached = record(TaskStatus.completed, webhook_status=0, webhook=hook)
    assert aai.transcript_body(unreached, None, "http://svc", "base")["webhook_status_code"] == 0
    pending = record(TaskStatus.completed, webhook_status=None, webhook=hook)
    assert aai.transcript_body(pending, None, "http://svc", "base")["webhook_status_code"] is None


def test_request_fields_read_back_as_sent() -> None:
    asked = {"language_code": "en_us", "audio_start_from": 0, "audio_end_at": 5000}
    task = record(TaskStatus.completed, language="en", clip={"start": 0.0, "end": 5.0},
                  assemblyai=asked)  # fmt: skip
    for transcript in (None, TWO_SPEAKERS):
        body = aai.transcript_body(task, transcript, "http://svc", "base")
        assert body["language_code"] == "en_us" and not body["language_detection"]
        assert (body["audio_start_from"], body["audio_end_at"]) == (0, 5000)
    # Detected, the language is the one found; a task of /api/tasks has no request to echo.
    found = record(TaskStatus.completed, language=None, clip={"start": 0.0, "end": None},
                   assemblyai={"language_code": "en_us"})  # fmt: skip
    assert aai.transcript_body(found, TWO_SPEAKERS, "http://svc", "base")["language_code"] == "ru"
    native = aai.transcript_body(record(TaskStatus.queued, language="ru",
                                        clip={"start": 90.0, "end": None}),
                                 None, "http://svc", "base")  # fmt: skip
    assert (native["language_code"], native["audio_start_from"]) == ("ru", 90000)
    assert native["audio_end_at"] is None


def test_custom_spelling_replaces_whole_words_and_phrases_in_any_case() -> None:
    t = Transcript(
        segments=(
            seg(1, [(0.0, 0.5, "Kubernetes"), (0.5, 1.0, "kubernetes,"), (1.0, 1.5, "catalog")]),
            seg(2, [(2.0, 2.5, "Ёлки"), (2.5, 3.0, "палки!"), (3.0, 3.5, "CAT.")]),
        ),
        language="ru",
        language_probability=0.9,
        duration=4.0,
    )
    rules = [{"from": ["kubernetes"], "to": "K8s"}, {"from": ["cat", "dog"], "to": "Cat"},
             {"from": ["ёлки палки"], "to": "ёлки-палки"}]  # fmt: skip
    out = aai.respell(t, rules)
    assert out.segments[0].text == "K8s K8s, catalog"  # not inside a longer word
    assert out.segments[1].text == "ёлки-палки! Cat."
    assert [w.word for w in out.segments[0].words] == [" K8s", " K8s,", " catalog"]
    assert out.segments[1].words[2].word == " Cat." and out.segments[1].words[2].start == 3.0
    assert aai.respell(t, []) is t and aai.respell(t, [{"from": [" "], "to": "x"}]) is t


def test_custom_spelling_where_lower_and_the_regex_fold_letters_differently() -> None:
    # "İ".lower() is two characters and "ſ".lower() stays "ſ", while the regex, ignoring
    # case, takes "İstanbul" for "istanbul" and "ſ" for "s": a rule still applies.
    t = Transcript((Segment(1, 0.0, 1.0, "İstanbul ſ İstanbul", ()),), "tr", 1.0, 1.0)
    rules = [{"from": ["istanbul"], "to": "Istanbul"}, {"from": ["s"], "to": "S"}]
    assert aai.respell(t, rules).segments[0].text == "Istanbul S Istanbul"
    as_written = [{"from": ["İstanbul"], "to": "Constantinople"}]
    assert aai.respell(t, as_written).segments[0].text == "Constantinople ſ Constantinople"
