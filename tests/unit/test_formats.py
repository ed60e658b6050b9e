"""Every output format, rendered from hand-built transcripts and read back by a real parser."""

from __future__ import annotations

import csv
import html
import io
import itertools
import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import srt
import webvtt
from docx import Document

from transcriber.domain import Notice, NoticeCode, Segment, Transcript, Word
from transcriber.errors import OptionError
from transcriber.formats import (
    FORMATS,
    JSON_SCHEMA,
    from_dict,
    parse_formats,
    render,
    to_dict,
)
from transcriber.formats.captions import MAX_CHARS, build_cues

HOUR = 3600.0

RU_LONG = (
    "Добрый день, коллеги. Сегодня мы обсудим результаты квартала, планы на следующий "
    "период и распределение бюджета между отделами продаж и маркетинга."
)
EN_LONG = (
    "The quick brown fox jumps over the lazy dog while the committee reviews "
    "the quarterly numbers and argues about the budget for next year."
)
LONG_WORD = "Высокопревосходительство" * 3  # 72 characters, longer than any caption line


def whisper_words(text: str, start: float, end: float) -> tuple[Word, ...]:
    """Words the way faster-whisper emits them: leading space, punctuation glued on."""
    parts = text.split()
    step = (end - start) / len(parts)
    return tuple(
        Word(start + i * step, start + (i + 0.8) * step, " " + w, 0.9) for i, w in enumerate(parts)
    )


def transcript(*segments: Segment, duration: float = 60.0, language: str = "ru") -> Transcript:
    return Transcript(
        segments=segments,
        language=language,
        language_probability=0.97,
        duration=duration,
        model="base",
        engine="faster-whisper",
        processing_time=1.23456,
        timings={"decode_vad": 0.1234, "asr": 1.0},
    )


RU_PLAIN = transcript(
    Segment(1, 0.0, 9.5, RU_LONG),
    Segment(2, 10.0, 12.0, "Вопросы есть?"),
)
EN_WORDS = transcript(
    Segment(1, 1.0, 13.0, EN_LONG, words=whisper_words(EN_LONG, 1.0, 13.0), speaker="A"),
    Segment(2, 13.5, 15.0, "Sounds good.", words=whisper_words("Sounds good.", 13.5, 15.0)),
    language="en",
)
SPEAKERS = transcript(
    Segment(1, 0.0, 2.0, "Привет!", speaker="A"),
    Segment(2, 2.0, 4.0, "Как дела?", speaker="A"),
    Segment(3, 4.5, 6.0, "Хорошо, спасибо.", speaker="B"),
    Segment(4, 6.5, 8.0, "Отлично.", speaker="A"),
)
OVER_AN_HOUR = transcript(
    Segment(1, HOUR + 0.5, HOUR + 3.25, "Первый час позади."),
    Segment(2, 10 * HOUR + 61.007, 10 * HOUR + 62.5, "Long after."),
    duration=11 * HOUR,
)
WITH_LONG_WORD = transcript(Segment(1, 0.0, 6.0, f"Слово {LONG_WORD} очень длинное."))
EMPTY = transcript(duration=0.0)

NON_EMPTY = [RU_PLAIN, EN_WORDS, SPEAKERS, OVER_AN_HOUR, WITH_LONG_WORD]
ALL = [*NON_EMPTY, EMPTY]
IDS = ["ru_plain", "en_words", "speakers", "over_an_hour", "long_word", "empty"]


def all_words(t: Transcript) -> list[str]:
    return [w for s in t.segments for w in s.text.split()]


def ms(td: timedelta) -> int:
    return round(td.total_seconds() * 1000)


def vtt_ms(stamp: str) -> int:
    hms, millis = stamp.split(".")
    h, m, s = (int(x) for x in hms.split(":"))
    return ((h * 60 + m) * 60 + s) * 1000 + int(millis)


def assert_timeline(spans: list[tuple[int, int]]) -> None:
    for start, end in spans:
        assert end > start >= 0
    for (_, prev_end), (next_start, _) in itertools.pairwise(spans):
        assert next_start >= prev_end


# --- registry --------------------------------------------------------------------------------


def test_registry_lists_every_format_with_extension_and_type() -> None:
    assert list(FORMATS) == ["txt", "srt", "vtt", "tsv", "json", "docx", "rttm"]
    for name, fmt in FORMATS.items():
        assert fmt.name == name
        assert fmt.extension == name
        assert "/" in fmt.content_type


def test_parse_formats_normalises_dedups_and_keeps_order() -> None:
    assert parse_formats("SRT, vtt,srt,TXT,") == ["srt", "vtt", "txt"]
    assert parse_formats("docx") == ["docx"]


@pytest.mark.parametrize("spec", ["srt,pdf", "PDF", "srt, doc ,vtt"])
def test_parse_formats_names_bad_format_and_lists_valid_ones(spec: str) -> None:
    with pytest.raises(OptionError) as info:
        parse_formats(spec)
    message = info.value.message
    bad = next(p.strip().lower() for p in spec.split(",") if p.strip().lower() not in FORMATS)
    assert repr(bad) in message
    for name in FORMATS:
        assert name in message


@pytest.mark.parametrize("spec", ["", " , "])
def test_parse_formats_rejects_empty_spec(spec: str) -> None:
    with pytest.raises(OptionError, match="no output format"):
        parse_formats(spec)


def test_render_rejects_unknown_or_several_formats() -> None:
    with pytest.raises(OptionError, match="'pdf'"):
        render(RU_PLAIN, "pdf")
    with pytest.raises(OptionError):
        render(RU_PLAIN, "srt,vtt")
    assert render(RU_PLAIN, " SRT ") == render(RU_PLAIN, "srt")


@pytest.mark.parametrize("t", ALL, ids=IDS)
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_renders_every_transcript(t: Transcript, fmt: str) -> None:
    data = render(t, fmt)
    assert isinstance(data, bytes)
    if fmt != "docx":
        text = data.decode("utf-8")
        assert not text.startswith("\ufeff")
        assert text == "" or text.endswith("\n")


# --- captions --------------------------------------------------------------------------------


@pytest.mark.parametrize("t", ALL, ids=IDS)
def test_cues_fit_the_line_limit_and_keep_every_word_whole(t: Transcript) -> None:
    cues = build_cues(t.segments)
    for cue in cues:
        assert 1 <= len(cue.lines) <= 2
        for line in cue.lines:
            assert line == line.strip() and line
            assert len(line) <= MAX_CHARS or " " not in line
    assert [w for c in cues for line in c.lines for w in line.split()] == all_words(t)
    assert_timeline([(c.start_ms, c.end_ms) for c in cues])


def test_long_text_is_split_into_several_two_line_cues() -> None:
    cues = build_cues(RU_PLAIN.segments[:1])
    assert len(cues) >= 2
    assert all(len(line) <= MAX_CHARS for c in cues for line in c.lines)
    # Greedy filling: a line breaks only where the next word would not fit.
    first = cues[0].lines
    next_word = first[1].split()[0]
    assert len(first[0]) + 1 + len(next_word) > MAX_CHARS


def test_long_single_word_stays_whole_on_its_own_line() -> None:
    lines = [line for c in build_cues(WITH_LONG_WORD.segments) for line in c.lines]
    assert LONG_WORD in lines
    assert lines == ["Слово", LONG_WORD, "очень длинное."]


def test_cue_times_come_from_words_when_present() -> None:
    seg = EN_WORDS.segments[0]
    cues = [c for c in build_cues(EN_WORDS.segments) if c.speaker == "A"]
    assert len(cues) >= 2
    assert cues[0].start_ms == round(seg.words[0].start * 1000)
    assert cues[-1].end_ms == round(seg.words[-1].end * 1000)
    n_first = sum(len(line.split()) for line in cues[0].lines)
    assert cues[0].end_ms == round(seg.words[n_first - 1].end * 1000)
    assert cues[1].start_ms == round(seg.words[n_first].start * 1000)


def test_whisper_punctuation_words_are_glued_to_the_previous_word() -> None:
    words = (Word(0.0, 0.5, " Hello"), Word(0.5, 0.6, ","), Word(0.7, 1.2, " world"))
    (cue,) = build_cues([Segment(1, 0.0, 1.2, " Hello, world", words=words)])
    assert cue.lines == ("Hello, world",)
    assert (cue.start_ms, cue.end_ms) == (0, 1200)


def test_cue_times_are_interpolated_by_characters_without_words() -> None:
    seg = RU_PLAIN.segments[0]
    cues = build_cues([seg])
    assert cues[0].start_ms == 0
    assert cues[-1].end_ms == round(seg.end * 1000)
    first_text = " ".join(cues[0].lines)
    expected_end = seg.end * len(first_text) / len(seg.text)
    assert abs(cues[0].end_ms - expected_end * 1000) <= 1
    assert abs(cues[1].start_ms - seg.end * (len(first_text) + 1) / len(seg.text) * 1000) <= 1


def test_overlapping_segments_give_ordered_non_overlapping_cues() -> None:
    # Split-channel calls: two speakers talking at once.
    segs = [
        Segment(1, 0.0, 4.0, "Я говорю одновременно с тобой", speaker="L"),
        Segment(2, 1.0, 3.0, "А я перебиваю", speaker="R"),
        Segment(3, 1.0, 1.0, "Тоже", speaker="R"),
    ]
    cues = build_cues(segs)
    assert len(cues) == 3
    assert_timeline([(c.start_ms, c.end_ms) for c in cues])


def test_short_cue_is_stretched_but_never_into_the_next_one() -> None:
    lonely = build_cues([Segment(1, 1.0, 1.05, "Да"), Segment(2, 5.0, 6.0, "Нет")])
    assert (lonely[0].start_ms, lonely[0].end_ms) == (1000, 1200)
    crowded = build_cues([Segment(1, 1.0, 1.05, "Да"), Segment(2, 1.1, 2.0, "Нет")])
    assert (crowded[0].start_ms, crowded[0].end_ms) == (1000, 1100)
    assert crowded[1].start_ms == 1100


def test_a_long_pause_between_words_starts_a_new_cue() -> None:
    words = (Word(0.0, 0.4, " Раз"), Word(5.0, 5.4, " два"))
    cues = build_cues([Segment(1, 0.0, 5.4, "Раз два", words=words)])
    assert [c.lines for c in cues] == [("Раз",), ("два",)]
    assert cues[0].end_ms == 400


# --- srt / vtt -------------------------------------------------------------------------------


@pytest.mark.parametrize("t", ALL, ids=IDS)
def test_srt_parses_back(t: Transcript) -> None:
    text = render(t, "srt").decode()
    subs = list(srt.parse(text))
    assert [s.index for s in subs] == list(range(1, len(subs) + 1))
    assert_timeline([(ms(s.start), ms(s.end)) for s in subs])
    words: list[str] = []
    for sub in subs:
        lines = sub.content.split("\n")
        assert 1 <= len(lines) <= 2
        assert all(len(line) <= MAX_CHARS or " " not in line for line in lines)
        content = sub.content
        if content.startswith("["):
            content = content.split("] ", 1)[1]
        words += content.split()
    assert words == all_words(t)
    if not t.segments:
        assert text == ""


def test_srt_timestamps_past_one_hour() -> None:
    text = render(OVER_AN_HOUR, "srt").decode()
    assert "1\n01:00:00,500 --> 01:00:03,250\nПервый час позади.\n\n" in text
    assert "2\n10:01:01,007 --> 10:01:02,500\nLong after.\n" in text
    assert [ms(s.start) for s in srt.parse(text)] == [3_600_500, 36_061_007]


def test_srt_prefixes_speaker_on_first_line_only() -> None:
    subs = list(srt.parse(render(EN_WORDS, "srt").decode()))
    a = [s for s in subs if s.content.startswith("[A] ")]
    assert len(a) >= 2
    for sub in subs:
        assert sub.content.count("[A]") <= 1
        assert not any(line.startswith("[A]") for line in sub.content.split("\n")[1:])
    assert subs[-1].content == "Sounds good."


@pytest.mark.parametrize("t", ALL, ids=IDS)
def test_vtt_parses_back(t: Transcript) -> None:
    text = render(t, "vtt").decode()
    assert text.startswith("WEBVTT\n")
    captions = webvtt.from_string(text).captions
    assert_timeline([(vtt_ms(c.start), vtt_ms(c.end)) for c in captions])
    speakers = [s.speaker for s in t.segments]
    words: list[str] = []
    for cap in captions:
        assert cap.voice in speakers
        lines = html.unescape(cap.text).split("\n")
        assert 1 <= len(lines) <= 2
        assert all(len(line) <= MAX_CHARS or " " not in line for line in lines)
        words += " ".join(lines).split()
    assert words == all_words(t)


def test_vtt_timestamps_voice_tags_and_escaping() -> None:
    t = transcript(
        Segment(1, HOUR + 0.5, HOUR + 2.0, "a <b> & c --> d", speaker="Иван"),
        Segment(2, HOUR + 3.0, HOUR + 4.0, "no speaker"),
    )
    text = render(t, "vtt").decode()
    assert "01:00:00.500 --> 01:00:02.000\n<v Иван>a &lt;b&gt; &amp; c --&gt; d\n" in text
    assert "01:00:03.000 --> 01:00:04.000\nno speaker\n" in text
    first, second = webvtt.from_string(text).captions
    assert (first.voice, html.unescape(first.text)) == ("Иван", "a <b> & c --> d")
    assert second.voice is None


# --- txt / tsv -------------------------------------------------------------------------------


def test_txt_one_line_per_segment_without_speakers() -> None:
    assert render(RU_PLAIN, "txt").decode() == f"{RU_LONG}\nВопросы есть?\n"
    assert render(EMPTY, "txt") == b""


def test_txt_joins_a_speakers_turn_and_prefixes_the_label() -> None:
    assert render(SPEAKERS, "txt").decode().splitlines() == [
        "A: Привет! Как дела?",
        "B: Хорошо, спасибо.",
        "A: Отлично.",
    ]


def test_tsv_parses_with_csv_and_uses_integer_milliseconds() -> None:
    t = transcript(
        Segment(1, 0.0, 1.5, "табуляция\tвнутри\nи перевод строки"),
        Segment(2, HOUR + 0.0015, HOUR + 2.25, ' English, "quoted" '),
    )
    rows = list(csv.reader(io.StringIO(render(t, "tsv").decode()), delimiter="\t"))
    assert rows[0] == ["start", "end", "text"]
    assert rows[1] == ["0", "1500", "табуляция внутри и перевод строки"]
    assert rows[2][:2] == ["3600002", "3602250"]
    assert all(len(row) == 3 for row in rows)
    assert render(EMPTY, "tsv") == b"start\tend\ttext\n"


def test_tsv_names_the_speaker_in_the_text_column() -> None:
    rows = [r.split("\t") for r in render(SPEAKERS, "tsv").decode().splitlines()]
    assert rows[0] == ["start", "end", "text"] and all(len(r) == 3 for r in rows)
    assert [r[2] for r in rows[1:3]] == ["[A] Привет!", "[A] Как дела?"]


# --- json ------------------------------------------------------------------------------------


_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "null": type(None),
    "boolean": bool,
}


def validate(value: Any, schema: dict[str, Any], path: str = "$") -> None:
    """The subset of JSON Schema that JSON_SCHEMA uses; raises AssertionError with a path."""
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        ok = any(
            isinstance(value, _TYPES[k]) and (k == "boolean" or not isinstance(value, bool))
            for k in kinds
        )
        assert ok, f"{path}: {value!r} is not {kinds}"
    if "enum" in schema:
        assert value in schema["enum"], f"{path}: {value!r} is not one of {schema['enum']}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        assert value >= schema.get("minimum", value), f"{path}: below minimum"
        assert value <= schema.get("maximum", value), f"{path}: above maximum"
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            assert key in value, f"{path}: missing {key!r}"
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                validate(item, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                validate(item, extra, f"{path}.{key}")
            else:
                assert extra is not False, f"{path}: unexpected {key!r}"
    if isinstance(value, list):
        assert len(value) >= schema.get("minItems", 0), f"{path}: too few items"
        assert len(value) <= schema.get("maxItems", len(value)), f"{path}: too many items"
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            validate(item, schema["items"], f"{path}[{i}]")


def test_schema_validator_catches_mistakes() -> None:
    good = to_dict(EN_WORDS)
    validate(good, JSON_SCHEMA)
    for broken in (
        {**good, "segments": [{**good["segments"][0], "speaker": 1}]},
        {**good, "duration": "long"},
        {k: v for k, v in good.items() if k != "metadata"},
        {**good, "surprise": True},
        {**good, "metadata": {**good["metadata"], "task": "summarize"}},
    ):
        with pytest.raises(AssertionError):
            validate(broken, JSON_SCHEMA)


@pytest.mark.parametrize("t", ALL, ids=IDS)
def test_json_matches_schema_and_round_trips(t: Transcript) -> None:
    data = render(t, "json")
    doc = json.loads(data)
    validate(doc, JSON_SCHEMA)
    assert doc == to_dict(t)
    assert doc["text"] == t.text
    assert doc["metadata"]["total_segments"] == len(t.segments)
    # Times are rounded to the millisecond, so the round trip is exact from the second pass on.
    back = from_dict(doc)
    assert to_dict(back) == doc
    assert len(back.segments) == len(t.segments)
    for got, want in zip(back.segments, t.segments, strict=True):
        assert (got.id, got.text, got.speaker) == (want.id, want.text.strip(), want.speaker)
        assert got.start == pytest.approx(want.start, abs=5e-4)
        assert [w.word for w in got.words] == [w.word for w in want.words]
    assert (back.language, back.model, back.engine) == (t.language, t.model, t.engine)
    assert back.duration == pytest.approx(t.duration, abs=5e-4)


def test_json_content() -> None:
    t = transcript(
        Segment(7, 1.23456, 2.0004, " Привет", avg_logprob=-0.25),
        Segment(8, 2.5, 3.0, "мир", words=(Word(2.5, 2.99949, " мир", 0.875),), speaker="B"),
    )
    data = render(t, "json")
    assert "Привет".encode() in data  # ensure_ascii=False
    doc = json.loads(data)
    first, second = doc["segments"]
    assert first == {
        "id": 7,
        "start": 1.235,
        "end": 2.0,
        "text": "Привет",
        "speaker": None,
        "words": [],
        "avg_logprob": -0.25,
    }
    assert second["speaker"] == "B"
    assert second["words"] == [{"start": 2.5, "end": 2.999, "word": " мир", "probability": 0.875}]
    assert doc["language"] == "ru" and doc["language_probability"] == 0.97
    assert doc["metadata"] == {
        "total_segments": 2,
        "processing_time": 1.235,
        "model": "base",
        "engine": "faster-whisper",
        "task": "transcribe",
        "timings": {"decode_vad": 0.123, "asr": 1.0},
        "warnings": [],
    }
    back = from_dict(doc)
    assert back.segments[0].text == "Привет" and back.segments[1].words[0].end == 2.999


def test_json_warnings_round_trip_and_unknown_codes_are_left_out() -> None:
    gap = Notice(NoticeCode.timestamp_gaps, "the audio's timestamps jump", {"gaps": 2})
    t = replace(transcript(Segment(1, 0.0, 1.0, "да")), notices=(gap,))
    doc = json.loads(render(t, "json"))
    validate(doc, JSON_SCHEMA)
    assert doc["metadata"]["warnings"] == [
        {"code": "timestamp_gaps", "message": "the audio's timestamps jump", "values": {"gaps": 2}}
    ]
    later = {"code": "from_a_later_version", "message": "?", "values": {}}
    doc["metadata"]["warnings"].append(later)
    back = from_dict(doc)
    assert back.notices == (gap,) and back.notices[0].values == {"gaps": 2}
    for broken in ({"code": "x"}, {**later, "values": {"n": [1]}}, {**later, "extra": 1}):
        with pytest.raises(AssertionError):
            validate({**doc, "metadata": {**doc["metadata"], "warnings": [broken]}}, JSON_SCHEMA)


@pytest.mark.parametrize("bad", [{}, {"segments": [{"id": 1}], "duration": 1}, {"segments": 3}])
def test_from_dict_rejects_what_is_not_a_transcript(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not a transcript"):
        from_dict(bad)


# --- docx ------------------------------------------------------------------------------------


def test_docx_reopens_with_title_metadata_and_bold_timestamps() -> None:
    t = transcript(
        Segment(1, 5.9, 7.0, "Добрый день.", speaker="A"),
        # A control character from the model must not break the XML.
        Segment(2, HOUR + 61.5, HOUR + 63.0, "Hello\x01world"),
        duration=HOUR + 63.0,
    )
    doc = Document(io.BytesIO(render(t, "docx")))
    paras = [p for p in doc.paragraphs if p.text]
    assert paras[0].text == "Transcript"
    assert "ru" in paras[1].text and "01:01:03" in paras[1].text
    assert paras[2].text == "[00:00:05] A: Добрый день."
    assert paras[3].text == "[01:01:01] Helloworld"
    stamp = paras[2].runs[0]
    assert stamp.text == "[00:00:05]" and stamp.bold
    assert not paras[2].runs[-1].bold
    # Warnings come before the text, one per line.
    gap = Notice(NoticeCode.timestamp_gaps, "the audio's timestamps jump 1 time(s)", {})
    noted = Document(io.BytesIO(render(replace(t, notices=(gap,)), "docx")))
    paras = [p for p in noted.paragraphs if p.text]
    assert paras[2].text == "Note: the audio's timestamps jump 1 time(s)"
    assert paras[3].text == "[00:00:05] A: Добрый день."


@pytest.mark.parametrize("t", ALL, ids=IDS)
def test_docx_holds_every_segment(t: Transcript) -> None:
    doc = Document(io.BytesIO(render(t, "docx")))
    body = [p.text for p in doc.paragraphs if p.text.startswith("[")]
    assert len(body) == sum(1 for s in t.segments if s.text.strip())
    for para, seg in zip(body, (s for s in t.segments if s.text.strip()), strict=True):
        assert para.endswith(" ".join(seg.text.split()))


def test_rttm_merges_turns_of_one_speaker() -> None:
    from transcriber.domain import Segment, SpeakerStat, Transcript
    from transcriber.formats.json_doc import from_dict as parse_doc
    from transcriber.formats.json_doc import to_dict as dump_doc

    segs = (
        Segment(1, 0.0, 2.0, "Привет.", speaker="A"),
        Segment(2, 2.2, 3.0, "Как дела?", speaker="A"),
        Segment(3, 3.5, 5.25, "Хорошо.", speaker="B"),
    )
    t = Transcript(segs, "ru", 0.9, 6.0, speakers=(SpeakerStat("A", 2.8), SpeakerStat("B", 1.75)))
    lines = render(t, "rttm").decode().splitlines()
    assert lines == [
        "SPEAKER audio 1 0.000 3.000 <NA> <NA> A <NA> <NA>",
        "SPEAKER audio 1 3.500 1.750 <NA> <NA> B <NA> <NA>",
    ]
    # Named after its recording (white space is not allowed inside a field).
    named = render(t, "rttm", name="Meeting 2 May").decode().splitlines()
    assert named[0] == "SPEAKER Meeting_2_May 1 0.000 3.000 <NA> <NA> A <NA> <NA>"
    doc = dump_doc(t)
    assert doc["speakers"] == [{"label": "A", "seconds": 2.8}, {"label": "B", "seconds": 1.75}]
    assert parse_doc(doc).speakers == t.speakers


def test_overlapping_turns_reach_rttm_and_json() -> None:
    from dataclasses import replace

    from transcriber.domain import Segment, SpeakerStat, Transcript
    from transcriber.formats.json_doc import from_dict as parse_doc
    from transcriber.formats.json_doc import to_dict as dump_doc

    segs = (
        Segment(1, 0.0, 4.0, "Я говорю долго.", speaker="A", overlap=True),
        Segment(2, 4.5, 6.0, "Да.", speaker="B"),
    )
    speakers = (
        SpeakerStat("A", 4.0, ((0.0, 4.0),)),
        SpeakerStat("B", 3.5, ((2.5, 3.5), (4.5, 6.0))),  # B talks over A at 2.5-3.5 s
    )
    t = Transcript(segs, "ru", 0.9, 6.0, speakers=speakers)
    assert render(t, "rttm").decode().splitlines() == [
        "SPEAKER audio 1 0.000 4.000 <NA> <NA> A <NA> <NA>",
        "SPEAKER audio 1 2.500 1.000 <NA> <NA> B <NA> <NA>",
        "SPEAKER audio 1 4.500 1.500 <NA> <NA> B <NA> <NA>",
    ]
    doc = dump_doc(t)
    validate(doc, JSON_SCHEMA)
    assert doc["speakers"][1]["turns"] == [[2.5, 3.5], [4.5, 6.0]]
    assert doc["segments"][0]["overlap"] is True and "overlap" not in doc["segments"][1]
    assert parse_doc(doc) == replace(t, timings={})
    with pytest.raises(AssertionError, match="too few"):
        validate(
            {**doc, "speakers": [{"label": "A", "seconds": 1.0, "turns": [[1.0]]}]}, JSON_SCHEMA
        )
