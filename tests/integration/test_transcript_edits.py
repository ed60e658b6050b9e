"""Editing a transcript on the server: the real model re-times edited words, every view
shows the edit, two editors cannot overwrite each other, and an edit can be undone."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import srt
from fastapi.testclient import TestClient

from tests.integration.test_api import JFK, assert_error, upload, wait

pytestmark = pytest.mark.slow


@pytest.fixture
def jfk_task(client: TestClient, eval_root: Path) -> dict[str, Any]:
    r = upload(client, eval_root / JFK, language="en", word_timestamps="true")
    assert r.status_code == 202, r.text
    done = wait(client, r.json()["id"])
    assert done["status"] == "completed", done
    return done


def editor(client: TestClient, task_id: str) -> dict[str, Any]:
    r = client.get(f"/api/tasks/{task_id}/transcript")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def words_in_order_inside(segment: dict[str, Any]) -> None:
    words = segment["words"]
    assert words, segment
    for w in words:
        assert segment["start"] <= w["start"] <= w["end"] <= segment["end"], (w, segment)
    for a, b in itertools.pairwise(words):
        assert a["end"] <= b["start"] + 1e-6, (a, b)


def test_an_edit_is_timed_shown_everywhere_and_undone(
    client: TestClient, jfk_task: dict[str, Any]
) -> None:
    tid = jfk_task["id"]
    before = editor(client, tid)
    assert before["revision"] == 0 and before["edited"] == [] and not before["can_undo"]
    seg = next(s for s in before["transcript"]["segments"] if "country" in s["text"])
    old_words = {w["word"].strip(): (w["start"], w["end"]) for w in seg["words"]}
    new_text = seg["text"].replace("country", "nation", 1)
    assert new_text != seg["text"]
    r = client.patch(
        f"/api/tasks/{tid}/transcript",
        json={"revision": 0, "segments": [{"id": seg["id"], "text": new_text}]},
    )
    assert r.status_code == 200, r.text
    after = r.json()
    assert after["revision"] == 1 and after["edited"] == [seg["id"]] and after["can_undo"]
    assert after["original"][str(seg["id"])]["text"] == seg["text"]  # the machine's, kept
    edited = next(s for s in after["transcript"]["segments"] if s["id"] == seg["id"])
    assert edited["text"] == new_text
    assert (edited["start"], edited["end"]) == (seg["start"], seg["end"])
    words_in_order_inside(edited)
    # Words left as they were keep the recogniser's times; the new one is aligned
    # between its neighbours, where "country" was said.
    kept = {w["word"].strip(): (w["start"], w["end"]) for w in edited["words"]}
    for text in ("ask", "what", "your"):
        if text in old_words and text in kept:
            assert kept[text] == old_words[text]
    nation = next(w for w in edited["words"] if "nation" in w["word"])
    country = next(w for w in seg["words"] if "country" in w["word"])
    assert abs(nation["start"] - country["start"]) < 1.0, (nation, country)

    # Every view shows the edit: the downloads, /result, OpenAI's verbose JSON, /v2.
    srt_text = client.get(f"/api/tasks/{tid}/result", params={"format": "srt"}).text
    assert "nation" in srt_text
    cues = list(srt.parse(srt_text))
    assert cues and all(c.start <= c.end for c in cues)
    verbose = client.get(f"/api/tasks/{tid}/export", params={"format": "verbose_json"}).json()
    assert "nation" in verbose["text"]
    spoken = [w for w in verbose["words"] if w["word"].startswith("nation")]
    assert spoken and seg["start"] <= spoken[0]["start"] <= spoken[0]["end"] <= seg["end"]
    starts = [w["start"] for w in verbose["words"]]
    assert starts == sorted(starts)
    v2 = client.get(f"/v2/transcript/{tid}").json()
    assert "nation" in v2["text"]
    original = client.get(f"/api/tasks/{tid}/result", params={"version": "original"}).json()
    assert "nation" not in original["text"]

    # Undo brings the machine's segment back, as a new revision.
    undone = client.post(f"/api/tasks/{tid}/transcript/undo", json={"revision": 1})
    assert undone.status_code == 200, undone.text
    body = undone.json()
    assert body["revision"] == 2 and body["edited"] == [] and not body["can_undo"]
    assert body["transcript"]["segments"] == before["transcript"]["segments"]
    assert_error(
        client.post(f"/api/tasks/{tid}/transcript/undo", json={"revision": 2}), 409, "conflict"
    )


def test_rttm_of_a_transcript_without_speakers_is_refused(
    client: TestClient, jfk_task: dict[str, Any]
) -> None:
    # It was an empty 200, which reads as "nobody spoke"; the CLI refuses it too.
    for route in ("result", "export"):
        r = client.get(f"/api/tasks/{jfk_task['id']}/{route}", params={"format": "rttm"})
        assert_error(r, 409, "conflict")
        assert "has no speaker labels, which rttm lists" in r.json()["error"]["message"]
    assert client.get(f"/api/tasks/{jfk_task['id']}/result", params={"format": "srt"}).is_success


def test_two_editors_on_one_revision_conflict(client: TestClient, jfk_task: dict[str, Any]) -> None:
    tid = jfk_task["id"]
    first = editor(client, tid)["transcript"]["segments"][0]
    ok = client.patch(  # JFK has no speakers until this change gives a segment one
        f"/api/tasks/{tid}/transcript",
        json={
            "revision": 0,
            "segments": [{"id": first["id"], "speaker": "A"}],
            "speaker_names": {"A": "Джон"},
        },
    )
    assert ok.status_code == 200 and ok.json()["speaker_names"] == {"A": "Джон"}
    late = client.patch(
        f"/api/tasks/{tid}/transcript",
        json={"revision": 0, "segments": [{"id": first["id"], "text": "Overwritten."}]},
    )
    assert_error(late, 409, "edit_conflict")
    assert "revision 1" in late.json()["error"]["message"]
    assert editor(client, tid)["transcript"]["segments"][0]["text"] == first["text"]
    assert_error(
        client.patch(
            f"/api/tasks/{tid}/transcript",
            json={"revision": 1, "segments": [{"id": 999, "text": "x"}]},
        ),
        404,
        "not_found",
    )
    assert_error(
        client.patch(
            f"/api/tasks/{tid}/transcript",
            json={"revision": 1, "segments": [{"id": first["id"], "speaker": "<b>"}]},
        ),
        422,
        "invalid_option",
    )


def test_a_misspelt_or_contradictory_edit_is_refused_by_name(
    client: TestClient, jfk_task: dict[str, Any]
) -> None:
    """Each was answered 200 with nothing changed (or a revision stored that named a
    speaker nobody has); NUL went raw into the downloads; 5000 names got a 319 KB error."""
    tid = jfk_task["id"]
    url = f"/api/tasks/{tid}/transcript"
    first = editor(client, tid)["transcript"]["segments"][0]

    def refused(body: dict[str, Any], *said: str, code: str = "invalid_option") -> None:
        r = client.patch(url, json=body)
        assert_error(r, 422, code)
        message: str = r.json()["error"]["message"]
        assert all(s in message for s in said), message
        assert len(r.content) < 1000, len(r.content)

    one = [{"id": first["id"], "text": "x"}]
    refused({"revision": 0, "segment": one}, "unknown field 'segment' (did you mean 'segments'?)")
    refused({"revision": 0, "segments": [{"id": first["id"], "txt": "x"}]},
            "segments[0]: unknown field 'txt' (did you mean 'text'?)")  # fmt: skip
    refused({"revision": 0, "segments": [{"id": first["id"], "revert": True, "text": "zz"}]},
            f"segment {first['id']}: revert", "no text or speaker")  # fmt: skip
    refused({"revision": 0, "speaker_names": {"Z": "x"}}, "no speaker 'Z'", "no speakers")
    refused({"revision": 0, "segments": [{"id": first["id"], "text": "a\u0000b"}]},
            f"segment {first['id']}'s text", "U+0000")  # fmt: skip
    names = {f"S{i}": "x" * 300 for i in range(5000)}  # every value too long, too
    refused({"revision": 0, "speaker_names": names}, "speaker_names has 5000 entries; at most 64")
    ids = [{"id": "x"}] * 100
    refused({"revision": 0, "segments": ids}, "and 95 more problems", code="invalid_request")
    after = editor(client, tid)
    assert after["revision"] == 0 and after["speaker_names"] == {}, after  # nothing stored

    # Tabs and line breaks are whitespace, folded into spaces as before.
    ok = client.patch(url, json={"revision": 0, "segments": [
        {"id": first["id"], "revert": True}, {"id": first["id"], "speaker": "A"}]})  # fmt: skip
    assert ok.status_code == 200, ok.text
    folded = first["text"].strip().replace(" ", "\t", 1) + "\r\n"
    ok = client.patch(url, json={"revision": 1, "segments": [{"id": first["id"], "text": folded}],
                                 "speaker_names": {"A": "Джон"}})  # fmt: skip
    assert ok.status_code == 200, ok.text
    srt_text = client.get(f"/api/tasks/{tid}/result", params={"format": "srt"}).text
    assert "\x00" not in srt_text and "[Джон]" in srt_text


def test_speakers_renamed_and_reassigned_reach_the_downloads(
    client: TestClient, eval_root: Path
) -> None:
    stereo = eval_root / "unreferenced/faster_whisper_stereo_diarization.wav"
    r = upload(client, stereo, channels="split", word_timestamps="true")
    done = wait(client, r.json()["id"])
    assert done["status"] == "completed", done
    tid = done["id"]
    view = editor(client, tid)
    segments = view["transcript"]["segments"]
    moved = next(s for s in segments if s["speaker"] == "channel 1")
    r = client.patch(
        f"/api/tasks/{tid}/transcript",
        json={
            "revision": 0,
            "segments": [{"id": moved["id"], "speaker": "channel 2"}],
            "speaker_names": {"channel 1": "Анна", "channel 2": "Борис"},
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    after = next(s for s in body["transcript"]["segments"] if s["id"] == moved["id"])
    assert after["speaker"] == "channel 2"
    assert {w.get("speaker") for w in after["words"]} <= {"channel 2", None}
    text = client.get(f"/api/tasks/{tid}/result", params={"format": "srt"}).text
    assert "[Борис]" in text and "[channel" not in text
    plain = client.get(
        f"/api/tasks/{tid}/export", params={"format": "srt", "speaker_labels": "false"}
    ).text
    assert "[" not in plain
    narrow = client.get(f"/api/tasks/{tid}/export", params={"format": "srt", "max_line": 16})
    lines = [ln for ln in narrow.text.splitlines() if ln and "-->" not in ln and not ln.isdigit()]
    assert lines and max(len(ln) for ln in lines if " " in ln.strip()) <= 16 + len("[Борис] ")
    assert_error(
        client.get(f"/api/tasks/{tid}/export", params={"format": "srt", "max_line": 3}), 422
    )
    doc = client.get(f"/api/tasks/{tid}/result", params={"format": "json"}).json()
    labels = {s["label"] for s in doc["speakers"]}
    assert "Борис" in labels and labels <= {"Анна", "Борис"}, labels
    before = sum(s["end"] - s["start"] for s in segments if s["speaker"] == "channel 2")
    boris = next(s["seconds"] for s in doc["speakers"] if s["label"] == "Борис")
    assert boris > before  # the moved segment's time went with it


def test_peaks_media_token_cancel_and_retry_with_new_options(
    tmp_path: Path, model_cache: Path, eval_root: Path
) -> None:
    from tests.integration.conftest import make_client

    key = {"Authorization": "Bearer key-one"}
    with make_client(tmp_path, model_cache, workers=1, api_keys="key-one") as c:
        task = upload(c, eval_root / JFK, headers=key, language="en").json()
        done = wait(c, task["id"], headers=key)
        assert done["status"] == "completed" and done["error_code"] is None
        peaks = c.get(f"/api/tasks/{task['id']}/peaks", params={"width": 50}, headers=key)
        assert peaks.status_code == 200, peaks.text
        body = peaks.json()
        # 11 s at ten peaks a second, each number the loudest of three: at most 50.
        assert 25 <= len(body["peaks"]) <= 50 and max(body["peaks"]) > 50
        assert 0.2 <= body["seconds_per_peak"] * len(body["peaks"]) / 11.0 <= 1.2
        media = f"/api/tasks/{task['id']}/media"
        assert_error(c.get(media), 401)
        ranged = c.get(media, params={"token": "key-one"}, headers={"Range": "bytes=0-9"})
        assert ranged.status_code == 206 and len(ranged.content) == 10

        # A cancelled task keeps its media and can be retried with other options.
        long = eval_root / "ru_more/asterisk_ru/core/demo-instruct.wav"
        queued = upload(c, long, headers=key, language="ru", prompt="Asterisk").json()
        stopped = c.post(f"/api/tasks/{queued['id']}/cancel", headers=key)
        assert stopped.status_code == 200 and stopped.json()["status"] == "cancelled"
        assert_error(c.post(f"/api/tasks/{queued['id']}/cancel", headers=key), 409)
        again = c.post(
            f"/api/tasks/{queued['id']}/retry",
            json={"language": "auto", "word_timestamps": True, "diarize": True},
            headers=key,
        )
        assert again.status_code == 202, again.text
        options = again.json()["options"]
        assert options["language"] is None and options["word_timestamps"] and options["diarize"]
        assert options["initial_prompt"] == "Asterisk"  # what the request did not name stays
        bad = c.post(f"/api/tasks/{done['id']}/retry", json={"model": "../x"}, headers=key)
        assert_error(bad, 409, "conflict")  # a completed task is not retried
        finished = wait(c, queued["id"], headers=key)
        assert finished["status"] == "completed", finished
        # Its speaker turns as RTTM name the recording, in /result and /export alike.
        for route in ("result", "export"):
            rttm = c.get(f"/api/tasks/{queued['id']}/{route}?format=rttm", headers=key)
            lines = rttm.text.splitlines()
            assert lines and all(x.split()[:2] == ["SPEAKER", "demo-instruct"] for x in lines)


def test_repeated_entries_for_one_segment_are_aligned_once(
    client: TestClient, jfk_task: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from transcriber.api import transcripts

    aligned: list[int] = []
    real = transcripts._timed

    def counted(*args: Any) -> Any:
        aligned.append(len(args[-1]))
        return real(*args)

    monkeypatch.setattr(transcripts, "_timed", counted)
    tid = jfk_task["id"]
    seg = editor(client, tid)["transcript"]["segments"][0]
    drafts = [{"id": seg["id"], "text": f"Draft {n}."} for n in range(30)]
    r = client.patch(
        f"/api/tasks/{tid}/transcript",
        json={"revision": 0, "segments": [*drafts, {"id": seg["id"], "text": "Final words."}]},
    )
    assert r.status_code == 200, r.text
    assert aligned == [1]  # one segment aligned, once: the last entry is the one kept
    after = next(s for s in r.json()["transcript"]["segments"] if s["id"] == seg["id"])
    assert after["text"] == "Final words." and [w["word"].strip() for w in after["words"]] == [
        "Final",
        "words.",
    ]
    words_in_order_inside(after)


def test_a_rerun_keeps_the_edited_text_as_the_old_version_and_starts_clean(
    client: TestClient, jfk_task: dict[str, Any]
) -> None:
    tid = jfk_task["id"]
    seg = editor(client, tid)["transcript"]["segments"][0]
    r = client.patch(
        f"/api/tasks/{tid}/transcript",
        json={"revision": 0, "segments": [{"id": seg["id"], "text": "Corrected by a person."}]},
    )
    assert r.status_code == 200, r.text
    again = client.post(f"/api/tasks/{tid}/rerun", data={"language": "en"})
    assert again.status_code == 202, again.text
    assert wait(client, tid)["status"] == "completed"
    kept = client.get(f"/api/tasks/{tid}/versions/1", params={"format": "txt"}).text
    assert "Corrected by a person." in kept  # the version is what people left
    now = editor(client, tid)
    assert now["revision"] == 0 and now["edited"] == [] and not now["can_undo"]
    text = client.get(f"/api/tasks/{tid}/result", params={"format": "txt"}).text
    assert "Corrected" not in text and "country" in text.lower()
