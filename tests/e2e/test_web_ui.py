"""The web UI in a real browser (Debian's Chromium via Playwright) against `transcriber serve`.

Upload with live progress over the WebSocket, the player-synced transcript, renamed speakers
in a download, the language switch and a refused upload. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import ROOT, eval_rows
from tests.integration.live_api import Server
from tests.media_factory import load, resample, write_silence, write_streams
from tests.servers.receiver import Receiver

pytestmark = pytest.mark.slow

try:
    from playwright.sync_api import Browser, Page, expect
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get("CI"):
        raise
    pytest.skip("playwright is not installed (pip install -e '.[dev]')", allow_module_level=True)

ARTIFACTS = ROOT / "test-artifacts"
DONE_S = 300_000  # ms: a transcription on a small shared CPU box
RU_WORDS = {"бедняга", "ребят", "на", "его", "месте", "должен", "был", "быть", "я"}
STEREO = "unreferenced/faster_whisper_stereo_diarization.wav"


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, locale="en-US", accept_downloads=True
    )
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(server.url + "/")
    pg.wait_for_selector("body[data-ready]")
    yield pg
    context.close()
    assert not errors, errors


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0); document.getElementById('toast').hidden = true")
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def task_item(page: Page, filename: str) -> Any:
    return page.locator("li.task", has_text=filename).first


def upload_and_wait(page: Page, path: Path) -> Any:
    """Upload through the file picker; the bar must reach 100% from the WebSocket events."""
    page.set_input_files("#file-input", str(path))
    item = task_item(page, path.name)
    expect(item.locator(".progress-block")).to_be_visible()
    expect(item).to_have_attribute("data-status", "completed", timeout=DONE_S)
    expect(item.locator(".progress-value")).to_have_text("100%")
    expect(item.locator(".progress")).to_have_attribute("aria-valuenow", "100")
    return item


def show_options(page: Page) -> None:
    """The options fold away once a file was sent with them: open them again."""
    page.evaluate("document.getElementById('options').open = true")


def open_transcript(page: Page, item: Any) -> None:
    item.locator(".task-actions button[data-action=open]").click()
    expect(page.locator("#viewer-body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#player")).to_have_attribute("data-ready", "true", timeout=30_000)


def test_upload_progress_transcript_and_seek(page: Page, eval_root: Path) -> None:
    video = eval_root / eval_rows("video.jsonl")[0]["path"]
    ru = eval_root / "ru" / "coqui_stt" / "ru.wav"
    page.select_option("#opt-language", "auto")
    item = upload_and_wait(page, video)
    show_options(page)
    page.select_option("#opt-language", "ru")
    page.fill("#opt-prompt", "Анна Петрова, Kubernetes")  # sent as Whisper's prompt
    page.fill("#opt-start", "0:00.5")  # only this part of the file is transcribed
    ru_item = upload_and_wait(page, ru)
    show_options(page)
    page.fill("#opt-prompt", "")
    page.fill("#opt-start", "")
    listed = page.evaluate("() => fetch('/api/tasks').then(r => r.json())")
    sent = next(t for t in listed["items"] if t["filename"] == ru.name)["options"]
    assert sent["initial_prompt"] == "Анна Петрова, Kubernetes" and sent["language"] == "ru"
    assert sent["clip"] == {"start": 0.5, "end": None}
    assert "0:42" in (item.locator(".task-meta").text_content() or "")
    ru_meta = ru_item.locator(".task-meta").text_content() or ""
    assert "RU" in ru_meta and "0:00–…" in ru_meta, ru_meta  # a part, from 0.5 s on

    open_transcript(page, item)
    expect(page.locator("#player video")).to_have_count(1)
    expect(page.locator("#notices")).to_be_hidden()  # clean speech: nothing to warn of
    expect(item.locator(".task-warning")).to_be_hidden()
    segments = page.locator("#segments .segment")
    expect(segments.first).to_be_visible()
    assert "example" in (page.locator("#segments").text_content() or "").lower()

    # Clicking a later segment moves the player there, and that segment becomes current.
    target = segments.nth(min(2, segments.count() - 1))
    start = float(target.get_attribute("data-start") or 0)
    page.wait_for_function("document.querySelector('#player video').readyState >= 1")
    target.locator(".seg-text").click()
    page.wait_for_function(
        f"Math.abs(document.querySelector('#player video').currentTime - {start}) < 1.5"
    )
    page.evaluate("document.querySelector('#player video').pause()")
    expect(target).to_have_class("segment active")
    current = page.evaluate("document.querySelector('#player video').currentTime")
    assert abs(current - start) < 1.5, (current, start)

    # Search marks the matches.
    page.fill("#search", "example")
    expect(page.locator("#segments mark").first).to_be_visible()
    expect(page.locator("#search-count")).not_to_have_text("")
    page.fill("#search", "")
    shot(page, "desktop-video")

    open_transcript(page, ru_item)
    expect(page.locator("#player audio")).to_have_count(1)
    text = (page.locator("#segments").text_content() or "").lower()
    got = set(text.replace(",", " ").replace(".", " ").split())
    assert got & RU_WORDS, text

    page.set_viewport_size({"width": 375, "height": 740})
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "phone-transcript")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_renamed_speaker_reaches_the_srt(page: Page, eval_root: Path, tmp_path: Path) -> None:
    page.check("#opt-split")
    item = upload_and_wait(page, eval_root / STEREO)
    open_transcript(page, item)
    rename = page.locator("#speaker-list input[data-speaker='channel 1']")
    expect(rename).to_be_visible()
    rename.fill("Анна")
    badges = page.locator("#segments .speaker[data-speaker='channel 1']")
    expect(badges.first).to_have_text("Анна")
    assert all(t == "Анна" for t in badges.all_text_contents())
    shot(page, "desktop-speakers")

    page.locator("#export summary").click()
    page.select_option("#download-format", "srt")
    with page.expect_download() as info:
        page.click("#download")
    download = info.value
    assert download.suggested_filename.endswith(".srt")
    srt = Path(download.path()).read_text("utf-8")
    assert "[Анна]" in srt, srt
    assert "[channel 1]" not in srt
    assert "[channel 2]" in srt

    # The names survive a reload: they are saved on the server.
    expect(page.locator("#toast")).to_have_text("Speaker name saved")
    page.reload()
    page.wait_for_selector("body[data-ready]")
    open_transcript(page, task_item(page, STEREO.rsplit("/", 1)[1]))
    expect(page.locator("#segments .speaker[data-speaker='channel 1']").first).to_have_text("Анна")


def test_a_transcript_shows_its_warnings_in_the_pages_language(page: Page, tmp_path: Path) -> None:
    quiet = write_silence(tmp_path / "quiet.flac", 5.0)
    item = upload_and_wait(page, quiet)
    # The task list says so before the transcript is opened; the sentence is its tooltip.
    flag = item.locator(".task-warning")
    expect(flag).to_have_text("Warnings: 1 (open the transcript to read them)")
    assert "no speech was found in 4.6 s" in (flag.get_attribute("title") or "")
    open_transcript(page, item)
    notices = page.locator("#notices li")
    expect(notices).to_have_count(1)
    expect(notices.first).to_have_attribute("data-code", "no_speech")
    expect(notices.first).to_have_text(
        "Nothing was transcribed: no speech was found in 4.6 s of audio."
    )
    shot(page, "desktop-warning")
    page.select_option("#ui-lang", "ru")
    expect(notices.first).to_have_text("Ничего не распознано: в 4,6 с аудио речь не найдена.")
    expect(flag).to_have_text("Предупреждений: 1 (откройте расшифровку, чтобы прочитать)")
    page.select_option("#ui-lang", "en")
    # Another transcript's view has no warnings left over from this one.
    page.locator("#viewer-close").click()
    expect(page.locator("#notices")).to_be_hidden()


def test_a_film_with_two_audio_tracks_plays_as_audio_and_names_its_track(
    page: Page, eval_root: Path, tmp_path: Path
) -> None:
    # An .mkv with no picture: a tone first, the Russian speech as the default track.
    speech = resample(load(eval_root / "ru/coqui_stt/ru.wav"), 48000)
    hum = (0.1 * np.sin(2 * np.pi * 220 * np.arange(len(speech)) / 48000)).astype(np.float32)
    film = write_streams(tmp_path / "film.mkv", [hum, speech], rate=48000, codec="libopus",
                         default=1, language="rus")  # fmt: skip
    item = upload_and_wait(page, film)
    open_transcript(page, item)
    notices = page.locator("#notices li")
    expect(notices).to_have_count(1)
    expect(notices.first).to_have_attribute("data-code", "other_tracks")
    expect(notices.first).to_contain_text("track 2 (rus) was transcribed")
    words = set(page.locator("#segments").inner_text().lower().replace(".", " ").split())
    assert len(words & RU_WORDS) >= 5, words
    # No picture in it: the player is the audio bar, not an empty black frame.
    expect(page.locator("#player .media")).to_have_class("media media-audio")
    box = page.locator("#player .media").bounding_box()
    assert box is not None and box["height"] < 80, box
    shot(page, "desktop-two-tracks")


def test_language_switch_and_accept_language(page: Page, browser: Browser, server: Server) -> None:
    title = page.locator("#upload-title")
    expect(title).to_have_text("New transcription")
    page.select_option("#ui-lang", "ru")
    expect(title).to_have_text("Новая расшифровка")
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    page.reload()  # the choice is remembered
    expect(title).to_have_text("Новая расшифровка")
    page.select_option("#ui-lang", "en")
    expect(title).to_have_text("New transcription")

    ru = browser.new_context(locale="ru-RU")
    try:
        pg = ru.new_page()
        pg.goto(server.url + "/")
        expect(pg.locator("#upload-title")).to_have_text("Новая расшифровка")
        pg.goto(server.url + "/?lang=en")
        expect(pg.locator("#upload-title")).to_have_text("New transcription")
        pg.set_viewport_size({"width": 375, "height": 740})
        pg.goto(server.url + "/?lang=ru")
        pg.wait_for_selector("body[data-ready]")
        shot(pg, "phone-ru")
        assert pg.evaluate("document.documentElement.scrollWidth") <= 375
    finally:
        ru.close()


def test_bad_upload_shows_the_api_error(page: Page, server: Server, tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("this is not a video\n")
    with bad.open("rb") as f:
        r = httpx.post(f"{server.url}/api/tasks", files={"file": (bad.name, f)})
    assert r.status_code == 415
    message = r.json()["error"]["message"]

    page.set_input_files("#file-input", str(bad))
    item = task_item(page, "notes.txt")
    expect(item).to_have_attribute("data-status", "rejected")
    error = item.locator(".task-error")
    expect(error).to_contain_text("This is not a video or audio file.")  # the code, worded
    error.locator("summary").click()
    expect(error.locator("details")).to_contain_text(message)  # the server's own words
    expect(page.locator("#toast")).to_contain_text("This is not a video or audio file.")
    expect(item.locator(".pill")).to_have_text("Rejected")
    shot(page, "desktop-list")
    item.locator("button[data-action=dismiss]").click()
    expect(task_item(page, "notes.txt")).to_have_count(0)


def test_an_upload_cancelled_midway_says_so(page: Page, eval_root: Path) -> None:
    """The upload is held on its way (the browser's request never reaches the server),
    so the card is still uploading when its Cancel is pressed: the card goes, and a
    toast says the upload was cancelled rather than leaving the reader to wonder."""
    held: list[Any] = []

    def hold_uploads(route: Any) -> None:
        if route.request.method == "POST":
            held.append(route)  # never answered: the upload stays in flight
        else:
            route.continue_()

    page.route("**/api/tasks", hold_uploads)
    page.set_input_files("#file-input", str(eval_root / "en/whisper/jfk.flac"))
    item = task_item(page, "jfk.flac")
    expect(item).to_have_attribute("data-status", "uploading")
    item.locator("button[data-action=cancel]").click()
    expect(task_item(page, "jfk.flac")).to_have_count(0)
    expect(page.locator("#toast")).to_have_text(
        "Upload of “jfk.flac” cancelled; nothing was sent to transcribe"
    )
    assert held, "the upload never reached the browser's network layer"
    listed = page.evaluate("() => fetch('/api/tasks').then(r => r.json())")
    assert all(t["filename"] != "jfk.flac" for t in listed["items"])


def test_a_refused_option_says_why_and_the_options_stay_open(
    page: Page, eval_root: Path, tmp_path: Path
) -> None:
    show_options(page)
    page.fill("#opt-start", "abc")
    # A name with no spaces: the toast wraps it instead of running out of its box.
    long = tmp_path / f"{'Very_long_meeting_recording_' * 8}end.flac"
    long.write_bytes((eval_root / "en/whisper/jfk.flac").read_bytes())
    page.set_input_files("#file-input", str(long))
    item = task_item(page, long.name[:40])
    expect(item).to_have_attribute("data-status", "rejected")
    # The page's sentence, then the server's reason in full: which option, and why.
    expect(item.locator(".task-error")).to_contain_text("'abc' is not a time")
    expect(page.locator("#toast")).to_contain_text("'abc' is not a time")
    expect(page.locator("#options")).to_have_attribute("open", "")
    toast = page.locator("#toast").bounding_box()
    assert toast is not None and toast["x"] >= 0 and toast["x"] + toast["width"] <= 1280, toast
    assert page.evaluate(
        "(el => el.scrollWidth <= el.clientWidth)(document.getElementById('toast'))"
    )
    shot(page, "desktop-option-refused")
    page.fill("#opt-start", "")


def test_api_key_is_asked_once_and_sent(browser: Browser, server: Server) -> None:
    # The same UI against a keyed service: the key form appears, then the list loads.
    (server.root / "keyed").mkdir()
    keyed = Server(server.root / "keyed", Path(server.env["TRANSCRIBER_MODEL_DIR"]))
    keyed.env["TRANSCRIBER_API_KEYS"] = "secret-key"
    keyed.start()
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    try:
        pg = context.new_page()
        pg.goto(keyed.url + "/")
        dialog = pg.locator("#key-dialog")
        expect(dialog).to_be_visible()
        pg.fill("#key-input", "secret-key")
        pg.click("#key-dialog button[value=save]")
        expect(dialog).to_be_hidden()
        pg.wait_for_selector("body[data-ready]")
        assert pg.evaluate("localStorage.getItem('transcriber.apiKey')") == "secret-key"
        expect(pg.locator("#tasks-empty")).to_be_visible()
        expect(pg.locator("#key-button")).to_be_visible()
    finally:
        context.close()
        keyed.stop()


def test_server_renamed_export_matches_result(server: Server, eval_root: Path) -> None:
    done = server.wait(server.upload(eval_root / STEREO, channels="split")["id"])
    assert done["status"] == "completed", done
    export = f"{server.url}/api/tasks/{done['id']}/export"
    plain = httpx.get(f"{server.url}/api/tasks/{done['id']}/result", params={"format": "srt"})
    same = httpx.get(export, params={"format": "srt"})
    assert same.status_code == 200 and same.content == plain.content
    names = json.dumps({"channel 2": "Борис"})
    r = httpx.get(export, params={"format": "json", "speaker_names": names})
    assert r.status_code == 200
    assert "filename*=UTF-8''" in r.headers["content-disposition"]
    before = server.result(done["id"])
    after = r.json()
    # Channel 2 is Борис everywhere it spoke, channel 1 is left as it was, nothing else moves.
    said = [s["speaker"] for s in before["segments"]]
    assert "channel 1" in said and "channel 2" in said
    assert [s["speaker"] for s in after["segments"]] == [
        "Борис" if who == "channel 2" else who for who in said
    ]
    assert [s["text"] for s in after["segments"]] == [s["text"] for s in before["segments"]]
    srt = httpx.get(export, params={"format": "srt", "speaker_names": names}).text
    assert "[Борис]" in srt and "[channel 2]" not in srt and "[channel 1]" in srt
    bad = httpx.get(export, params={"speaker_names": "[1]"})
    assert bad.status_code == 422


def test_language_choice_and_download_names() -> None:
    from transcriber.api.routes.export import content_disposition, rename_speakers
    from transcriber.api.routes.web import pick_language

    assert pick_language(None, None, "ru-RU,ru;q=0.9,en-US;q=0.8") == "ru"
    assert pick_language(None, None, "en-US,en;q=0.9,ru;q=0.8") == "en"
    assert pick_language(None, None, "de-DE,ru;q=0.5") == "ru"
    assert pick_language(None, None, "fr") == "en"
    assert pick_language("en", "ru", "ru") == "en"
    assert pick_language(None, "ru", "en") == "ru"
    header = content_disposition("лекция.srt")
    header.encode("latin-1")  # Starlette sends headers as Latin-1
    assert header.endswith("%D0%BB%D0%B5%D0%BA%D1%86%D0%B8%D1%8F.srt")
    doc = {"segments": [{"speaker": "A", "words": [{"word": "hi", "speaker": "A"}]}]}
    renamed = rename_speakers(doc, {"A": "Анна"})
    assert renamed["segments"][0]["speaker"] == "Анна"
    assert renamed["segments"][0]["words"][0]["speaker"] == "Анна"
    assert doc["segments"][0]["speaker"] == "A"


def test_a_link_is_transcribed_and_a_broken_one_fails(
    page: Page, eval_root: Path, receiver: Receiver
) -> None:
    receiver.files["talks/jfk.flac"] = eval_root / "en/whisper/jfk.flac"
    page.fill("#url-input", f"{receiver.url}/talks/jfk.flac?sig=1")
    page.press("#url-input", "Enter")
    expect(page.locator("#url-input")).to_have_value("")
    item = task_item(page, "jfk.flac")
    expect(item).to_have_attribute("data-status", "completed", timeout=DONE_S)
    open_transcript(page, item)  # the player plays the media the worker fetched
    expect(page.locator("#viewer-body")).to_contain_text("country")

    # "Translate into English" sends Whisper's translate task: Russian speech, English text.
    row = next(r for r in eval_rows("asr.jsonl") if "конференц" in r["text"])
    receiver.files["talks/conf.wav"] = eval_root / row["path"]
    show_options(page)
    page.check("#opt-translate")
    page.fill("#url-input", f"{receiver.url}/talks/conf.wav")
    page.press("#url-input", "Enter")
    show_options(page)
    page.uncheck("#opt-translate")
    translated = task_item(page, "conf.wav")
    expect(translated).to_have_attribute("data-status", "completed", timeout=DONE_S)
    expect(translated.locator(".task-meta")).to_contain_text("RU → EN")
    open_transcript(page, translated)
    expect(page.locator("#viewer-body")).to_contain_text("conference")

    page.fill("#url-input", f"{receiver.url}/missing.mp3")
    page.click("#url-button")
    broken = task_item(page, "missing.mp3")
    expect(broken).to_have_attribute("data-status", "failed", timeout=DONE_S)
    # Worded for the reader, with what the server said one click away.
    error = broken.locator(".task-error")
    expect(error).to_contain_text("The link could not be downloaded.")
    expect(error.locator("details")).to_contain_text(
        f"{receiver.url}/missing.mp3 answered HTTP 404"
    )
    expect(broken.locator(".task-actions button[data-action=retry]")).to_be_visible()
    shot(page, "desktop-link")
