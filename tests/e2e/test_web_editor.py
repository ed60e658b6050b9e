"""The page as a transcript editor, in a real browser, at desktop (1280×900) and phone
(375×800) sizes: the action stays in view, corrections are saved on the server with word
times re-aligned, two editors conflict instead of overwriting, the player streams, the
progress moves, dark mode, errors in the reader's language, and axe-core finds nothing
serious. Screenshots go to test-artifacts/."""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT
from tests.e2e.test_web_ui import ARTIFACTS, DONE_S, STEREO, task_item
from tests.integration.test_serve import Server
from tests.media_factory import write_silence

pytestmark = pytest.mark.slow

try:
    from playwright.sync_api import Browser, Page, Route, expect
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get("CI"):
        raise
    pytest.skip("playwright is not installed (pip install -e '.[dev]')", allow_module_level=True)

JFK = "en/whisper/jfk.flac"
SIZES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 375, "height": 800}}
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def open_page(browser: Browser, server: Server, size: str, **context: Any) -> Page:
    ctx = browser.new_context(viewport=SIZES[size], accept_downloads=True, **context)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors  # type: ignore[attr-defined]
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready]")
    return page


@pytest.fixture
def pages(browser: Browser, server: Server) -> Iterator[list[Page]]:
    made: list[Page] = []
    yield made
    for pg in made:
        errors = pg.errors  # type: ignore[attr-defined]
        pg.context.close()
        assert not errors, errors


def shot(page: Page, name: str) -> None:
    """What the reader sees now: the viewport as it is scrolled, without the toast."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("document.getElementById('toast').hidden = true")
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def in_view(page: Page, selector: str) -> bool:
    """The element's top is on screen, below the sticky bar."""
    return bool(
        page.evaluate(
            """(sel) => {
                const r = document.querySelector(sel).getBoundingClientRect();
                const bar = document.querySelector('.topbar').getBoundingClientRect().bottom;
                return r.height > 0 && r.top >= bar - 1 && r.top < innerHeight - 40;
            }""",
            selector,
        )
    )


def wait_done(page: Page, name: str) -> Any:
    item = task_item(page, name)
    expect(item).to_have_attribute("data-status", "completed", timeout=DONE_S)
    return item


def completed_task(server: Server, name: str) -> dict[str, Any]:
    items = httpx.get(f"{server.url}/api/tasks").json()["items"]
    return next(t for t in items if t["filename"] == name and t["status"] == "completed")


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_new_card_and_the_opened_transcript_are_in_view(
    browser: Browser, server: Server, pages: list[Page], eval_root: Path, size: str
) -> None:
    page = open_page(browser, server, size, locale="en-US")
    pages.append(page)
    expect(page.locator("h1")).to_have_text("Video Transcriber")
    expect(page.locator("#options")).to_have_attribute("open", "")  # a first visit
    page.set_input_files("#file-input", str(eval_root / JFK))
    item = task_item(page, "jfk.flac")
    expect(item).to_be_visible()
    page.wait_for_function(
        """() => { const r = document.querySelector('li.task').getBoundingClientRect();
                   const bar = document.querySelector('.topbar').getBoundingClientRect();
                   return r.top >= bar.bottom - 1 && r.bottom <= innerHeight; }"""
    )
    expect(page.locator("#options")).not_to_have_attribute("open", "")  # folded once used
    shot(page, f"{size}-new-card")
    wait_done(page, "jfk.flac")

    # From the bottom of the page, as a reader who scrolled to the list: the name opens it.
    for how in ("name", "button"):
        if how == "button":
            page.locator("#viewer-close").click()
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        if how == "name":
            item.locator("button.task-name-button").click()
        else:
            item.locator(".task-actions button[data-action=open]").click()
        expect(page.locator("#viewer-body")).to_have_attribute("data-ready", "true")
        page.wait_for_function(
            """() => { const r = document.getElementById('viewer-body').getBoundingClientRect();
                       const bar = document.querySelector('.topbar').getBoundingClientRect();
                       return r.top >= bar.bottom - 1 && r.top < innerHeight - 100; }""",
            timeout=5000,
        )
        expect(item).to_have_class("task is-open")
        expect(item).to_have_attribute("aria-current", "true")
        expect(page.locator("#segments .segment").first).to_be_visible()
    shot(page, f"{size}-opened")
    if size == "phone":
        # The player stays on screen while the transcript scrolls under it.
        expect(page.locator("#player audio")).to_have_count(1)
        page.evaluate("window.scrollBy(0, 300)")
        assert in_view(page, "#player-wrap"), "the player scrolled away"
        assert page.evaluate("document.documentElement.scrollWidth") <= 375


def edit_first_segment(page: Page, old: str, new: str) -> None:
    seg = page.locator("#segments .segment", has_text=old).first
    seg.locator(".seg-text").dblclick()
    area = seg.locator("textarea")
    expect(area).to_be_focused()
    area.fill(area.input_value().replace(old, new, 1))
    area.press("Enter")


def test_a_correction_is_timed_saved_and_seen_by_another_browser(
    browser: Browser, server: Server, pages: list[Page], eval_root: Path
) -> None:
    one = open_page(browser, server, "desktop", locale="en-US")
    two = open_page(browser, server, "phone", locale="en-US")
    pages.extend([one, two])
    if not task_item(one, "jfk.flac").count():
        one.set_input_files("#file-input", str(eval_root / JFK))
    wait_done(one, "jfk.flac").locator("button.task-name-button").click()
    expect(one.locator("#viewer-body")).to_have_attribute("data-ready", "true")
    edit_first_segment(one, "country", "nation")
    edited = one.locator("#segments .segment.edited")
    expect(edited).to_have_count(1, timeout=60_000)
    expect(edited.locator(".seg-text")).to_contain_text("nation")
    expect(one.locator("#undo-edit")).to_be_enabled()
    one.locator("#show-original").click()
    expect(edited.locator(".seg-original")).to_contain_text("country")
    shot(one, "desktop-corrected")

    task = completed_task(server, "jfk.flac")
    srt = httpx.get(f"{server.url}/api/tasks/{task['id']}/result", params={"format": "srt"}).text
    assert "nation" in srt, srt
    verbose = httpx.get(
        f"{server.url}/api/tasks/{task['id']}/export", params={"format": "verbose_json"}
    ).json()
    seg = next(s for s in verbose["segments"] if "nation" in s["text"])
    words = [w for w in verbose["words"] if seg["start"] <= w["start"] <= seg["end"]]
    assert any(w["word"].startswith("nation") for w in words), words
    for w in words:
        assert seg["start"] <= w["start"] <= w["end"] <= seg["end"], (w, seg)
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)

    # A second browser (a colleague's phone) sees the correction and the name given here.
    two.locator(f"li.task[data-task-id='{task['id']}'] button.task-name-button").click()
    expect(two.locator("#segments .segment.edited .seg-text")).to_contain_text("nation")


def test_speaker_names_live_on_the_server(
    browser: Browser, server: Server, pages: list[Page], eval_root: Path
) -> None:
    one = open_page(browser, server, "desktop", locale="en-US")
    pages.append(one)
    one.check("#opt-split")
    stereo = eval_root / "unreferenced/faster_whisper_stereo_diarization.wav"
    one.set_input_files("#file-input", str(stereo))
    wait_done(one, stereo.name).locator("button.task-name-button").click()
    rename = one.locator("#speaker-list input[data-speaker='channel 1']")
    rename.fill("Анна")
    rename.press("Tab")
    expect(one.locator("#toast")).to_have_text("Speaker name saved")
    # Another browser, with nothing in its storage, sees the name.
    two = open_page(browser, server, "desktop", locale="en-US")
    pages.append(two)
    two.locator("li.task", has_text=stereo.name).locator("button.task-name-button").click()
    expect(two.locator("#speaker-list input[data-speaker='channel 1']")).to_have_value("Анна")
    expect(two.locator("#segments .speaker[data-speaker='channel 1']").first).to_have_text("Анна")
    task = completed_task(server, stereo.name)
    srt = httpx.get(f"{server.url}/api/tasks/{task['id']}/result", params={"format": "srt"}).text
    assert "[Анна]" in srt and "[channel 1]" not in srt
    shot(two, "desktop-speakers-server")
    # On a phone in Russian (longer words), a segment's edit form fits the screen, its
    # speaker list included.
    phone = open_page(browser, server, "phone", locale="ru-RU")
    pages.append(phone)
    phone.locator("li.task", has_text=stereo.name).locator("button.task-name-button").click()
    expect(phone.locator("#viewer-body")).to_have_attribute("data-ready", "true")
    phone.locator("#segments .segment .seg-text").first.dblclick()
    select = phone.locator("#segments .seg-form select")
    expect(select).to_be_visible()
    form = phone.locator("#segments .seg-form").bounding_box()
    box = select.bounding_box()
    assert form is not None and box is not None
    assert box["x"] >= form["x"] and box["x"] + box["width"] <= form["x"] + form["width"], (
        box,
        form,
    )
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375


def test_two_editors_on_one_revision_get_a_conflict(
    browser: Browser, server: Server, pages: list[Page], eval_root: Path
) -> None:
    one = open_page(browser, server, "desktop", locale="en-US")
    two = open_page(browser, server, "desktop", locale="en-US")
    pages.extend([one, two])
    if not task_item(one, "jfk.flac").count():
        one.set_input_files("#file-input", str(eval_root / JFK))
        wait_done(one, "jfk.flac")  # before the reload below, which would stop the upload
    for pg in (one, two):
        pg.reload()
        pg.wait_for_selector("body[data-ready]")
        wait_done(pg, "jfk.flac").locator("button.task-name-button").click()
        expect(pg.locator("#viewer-body")).to_have_attribute("data-ready", "true")
    read = two.locator("#viewer-body").get_attribute("data-revision")
    assert one.locator("#viewer-body").get_attribute("data-revision") == read
    edit_first_segment(one, "ask", "Ask")
    expect(one.locator("#viewer-body")).not_to_have_attribute("data-revision", read or "")
    edit_first_segment(two, "what", "WHAT")
    expect(two.locator("#toast")).to_contain_text("Someone else changed this transcript")
    expect(two.locator("#toast")).to_contain_text("your text is kept in the form")
    # The second editor now shows the first one's change, not its own...
    expect(two.locator("#viewer-body")).to_have_attribute(
        "data-revision", one.locator("#viewer-body").get_attribute("data-revision") or ""
    )
    shown = " ".join(two.locator("#segments .seg-text").all_text_contents())
    assert "WHAT" not in shown
    # ...and its correction waits in the form, on the reloaded text, to be saved again.
    form = two.locator("#segments .segment", has=two.locator(".seg-form"))
    seg_id = form.get_attribute("data-id")
    seg = two.locator(f"#segments .segment[data-id='{seg_id}']")
    area = seg.locator("textarea")
    expect(area).to_be_focused()
    expect(area).to_have_value(re.compile("WHAT"))
    area.press("Enter")
    expect(seg.locator(".seg-text")).to_contain_text("WHAT")
    expect(two.locator("#segments .seg-form")).to_have_count(0)


def test_the_player_streams_a_large_file_with_ranges(
    browser: Browser, server: Server, pages: list[Page], tmp_path: Path
) -> None:
    big = write_silence(tmp_path / "big.wav", 300.0, codec="pcm_s16le", rate=48000)
    size = big.stat().st_size
    assert size > 25e6
    page = open_page(browser, server, "desktop", locale="en-US")
    pages.append(page)
    ranges: list[str | None] = []
    page.on(
        "request",
        lambda r: ranges.append(r.headers.get("range")) if "/media" in r.url else None,
    )
    page.set_input_files("#file-input", str(big))
    wait_done(page, "big.wav").locator("button.task-name-button").click()
    expect(page.locator("#player")).to_have_attribute("data-ready", "true", timeout=30_000)
    page.evaluate("document.querySelector('#player audio').currentTime = 250")
    page.wait_for_function("document.querySelector('#player audio').readyState >= 2")
    assert ranges and all(r and r.startswith("bytes=") for r in ranges), ranges
    assert any(r != "bytes=0-" for r in ranges), ranges  # the seek asked for a later range
    expect(page.locator("#timeline")).to_have_attribute("aria-valuemax", "300")


def test_progress_moves_during_the_first_window(
    browser: Browser, server: Server, pages: list[Page], eval_root: Path
) -> None:
    page = open_page(browser, server, "desktop", locale="en-US")
    pages.append(page)
    speech = eval_root / "ru_more/asterisk_ru/core/demo-instruct.wav"
    page.set_input_files("#file-input", str(speech))
    item = task_item(page, speech.name)
    expect(item).to_have_attribute("data-status", "processing", timeout=DONE_S)
    shown: list[tuple[int, int]] = []  # (what the bar shows, what the server said)
    details: list[str] = []  # the line under the bar: the time left
    titles: list[str] = []
    while item.get_attribute("data-status") == "processing" and len(shown) < 300:
        block = item.locator(".progress-block")
        reported = int(block.get_attribute("data-reported") or 0)
        bar = int(item.locator(".progress").get_attribute("aria-valuenow") or 0)
        shown.append((bar, reported))
        details.append(item.locator(".progress-detail").text_content() or "")
        titles.append(page.title())
        if reported > 0 and len(shown) > 5:
            break
        page.wait_for_timeout(100)
    before_first = [bar for bar, said in shown if said == 0]
    assert before_first and max(before_first) > 0, shown
    assert before_first == sorted(before_first), shown  # never backwards
    assert any("left" in d or "finishing" in d for d in details), details
    assert any(t.startswith(tuple("123456789")) and "%" in t for t in titles), titles
    wait_done(page, speech.name)
    assert "%" not in page.title()


def test_dark_mode_follows_the_system_and_the_switch(
    browser: Browser, server: Server, pages: list[Page]
) -> None:
    page = open_page(browser, server, "desktop", locale="en-US", color_scheme="dark")
    pages.append(page)
    luminance = "() => { const [r, g, b] = getComputedStyle(document.body).backgroundColor" \
        ".match(/\\d+/g).map(Number); return (0.2126*r + 0.7152*g + 0.0722*b) / 255; }"  # fmt: skip
    assert page.evaluate(luminance) < 0.2
    switch = page.locator("#theme-button")
    expect(switch).to_have_attribute("aria-pressed", "true")
    shot(page, "desktop-dark")
    switch.click()
    assert page.evaluate(luminance) > 0.8
    page.reload()
    page.wait_for_selector("body[data-ready]")
    assert page.evaluate(luminance) > 0.8  # the choice is kept


def test_a_refused_upload_is_worded_in_russian(
    browser: Browser, server: Server, pages: list[Page], tmp_path: Path
) -> None:
    page = open_page(browser, server, "phone", locale="ru-RU")
    pages.append(page)
    bad = tmp_path / "заметки.txt"
    bad.write_text("это не видео\n")
    page.set_input_files("#file-input", str(bad))
    item = task_item(page, bad.name)
    expect(item).to_have_attribute("data-status", "rejected")
    expect(item.locator(".task-error")).to_contain_text("Это не видео и не аудиофайл.")
    expect(page.locator("#toast")).to_contain_text("Это не видео и не аудиофайл.")
    expect(item.locator(".task-icon")).to_have_attribute("data-kind", "file")
    shot(page, "phone-ru-refused")


def test_axe_finds_nothing_serious(
    browser: Browser, server: Server, pages: list[Page], eval_root: Path
) -> None:
    if not AXE.is_file():
        if os.environ.get("CI"):
            pytest.fail("axe-core is not installed: npm install --no-save axe-core")
        pytest.skip(
            "axe-core is absent (npm install --no-save axe-core): accessibility scan skipped"
        )
    script = AXE.read_text("utf-8")
    for size, scheme in (("desktop", "light"), ("phone", "dark")):
        page = open_page(browser, server, size, locale="ru-RU", color_scheme=scheme)
        pages.append(page)
        if not task_item(page, "jfk.flac").count():
            page.set_input_files("#file-input", str(eval_root / JFK))
        wait_done(page, "jfk.flac").locator("button.task-name-button").click()
        expect(page.locator("#viewer-body")).to_have_attribute("data-ready", "true")
        page.locator("#segments .segment .seg-edit").first.click()  # the form too
        page.add_script_tag(content=script)
        found = page.evaluate(
            """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
                 .map(v => ({id: v.id, impact: v.impact, help: v.help,
                             nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"""
        )
        serious = [v for v in found if v["impact"] in ("serious", "critical")]
        assert not serious, (size, scheme, serious)


# --- What the reader typed survives; the page keeps the keyboard where it was. ---


def open_jfk(page: Page, eval_root: Path) -> None:
    if not task_item(page, "jfk.flac").count():
        page.set_input_files("#file-input", str(eval_root / JFK))
    wait_done(page, "jfk.flac").locator("button.task-name-button").click()
    expect(page.locator("#viewer-body")).to_have_attribute("data-ready", "true")


def page_with_jfk_open(
    browser: Browser, server: Server, pages: list[Page], eval_root: Path
) -> Page:
    """A new English desktop page (closed at the test's end) with JFK's transcript open."""
    page = open_page(browser, server, "desktop", locale="en-US")
    pages.append(page)
    open_jfk(page, eval_root)
    return page


def fake_task(task_id: str, filename: str, status: str) -> dict[str, Any]:
    """A task the server does not have, for the list to show."""
    return {
        "id": task_id,
        "filename": filename,
        "status": status,
        "created_at": "2024-05-01T10:00:00Z",
        "progress": 0.0,
        "options": {},
    }


def list_with(page: Page, *fakes: dict[str, Any]) -> None:
    """The page again, its task list as the server sends it with `fakes` on top."""

    def answer(route: Route) -> None:
        listed = route.fetch().json()
        listed["items"] = [*fakes, *listed["items"]]
        route.fulfill(json=listed)

    page.route("**/api/tasks?limit=200", answer)
    page.reload()
    page.wait_for_selector("body[data-ready]")


def test_an_open_correction_keeps_its_text_when_the_transcript_is_drawn_again(
    browser: Browser, server: Server, pages: list[Page], eval_root: Path
) -> None:
    page = page_with_jfk_open(browser, server, pages, eval_root)
    seg = page.locator("#segments .segment").first
    seg.locator(".seg-text").dblclick()
    area = seg.locator("textarea")
    area.fill("A draft not saved yet")
    # Switching the page's language draws every segment again (as a save or Undo does).
    page.select_option("#ui-lang", "ru")
    expect(page.locator("#viewer-close")).to_have_text("Закрыть")
    area = page.locator("#segments .segment").first.locator("textarea")
    expect(area).to_have_value("A draft not saved yet")
    expect(area).to_be_focused()
    expect(page.locator("#segments .seg-form button[type=submit]")).to_have_text("Сохранить")
    shot(page, "desktop-draft-kept-ru")
    # Another segment's correction is saved: the first form still holds its draft.
    other = page.locator("#segments .segment").nth(1)
    revision = page.locator("#viewer-body").get_attribute("data-revision")
    other.locator(".seg-text").dblclick()
    other_area = other.locator("textarea")
    other_area.fill(other_area.input_value().rstrip() + " Truly.")
    other_area.press("Enter")
    expect(page.locator("#viewer-body")).not_to_have_attribute("data-revision", revision or "")
    expect(other.locator(".seg-text")).to_contain_text("Truly")
    expect(page.locator("#segments .segment").first.locator("textarea")).to_have_value(
        "A draft not saved yet"
    )


def test_a_speaker_name_being_typed_keeps_the_focus_through_its_save(
    browser: Browser, server: Server, pages: list[Page], eval_root: Path
) -> None:
    page = open_page(browser, server, "desktop", locale="en-US")
    pages.append(page)
    stereo = eval_root / STEREO
    if not task_item(page, stereo.name).count():
        page.check("#opt-split")
        page.set_input_files("#file-input", str(stereo))
    wait_done(page, stereo.name).locator("button.task-name-button").click()
    expect(page.locator("#viewer-body")).to_have_attribute("data-ready", "true")
    rename = page.locator("#speaker-list input[data-speaker='channel 2']")
    rename.fill("")
    rename.press_sequentially("Bo")
    expect(page.locator("#toast")).to_have_text("Speaker name saved")  # saved after a pause
    expect(rename).to_be_focused()
    # Still typing in the field: "e" is a letter of the name, not the editor's shortcut.
    page.keyboard.type("er")
    expect(rename).to_have_value("Boer")
    expect(page.locator("#segments .seg-form")).to_have_count(0)
    expect(page.locator("#segments .speaker[data-speaker='channel 2']").first).to_have_text("Boer")
    page.wait_for_function(
        """async (id) => (await (await fetch(`/api/tasks/${id}/transcript`)).json())
             .speaker_names['channel 2'] === 'Boer'""",
        arg=completed_task(server, stereo.name)["id"],
    )
    expect(rename).to_be_focused()


def test_the_open_transcript_is_kept_and_a_typed_correction_is_not_lost_silently(
    browser: Browser, server: Server, pages: list[Page], eval_root: Path
) -> None:
    page = page_with_jfk_open(browser, server, pages, eval_root)
    expect(page.locator("#player")).to_have_attribute("data-ready", "true", timeout=30_000)
    page.evaluate(
        "() => { const m = document.querySelector('#player audio');"
        " m.dataset.kept = 'yes'; m.currentTime = 5; }"
    )
    # The task already open, clicked again: the same player, at the same place.
    task_item(page, "jfk.flac").locator("button.task-name-button").click()
    expect(page.locator("#player audio[data-kept=yes]")).to_have_count(1)
    assert page.evaluate("document.querySelector('#player audio').currentTime") >= 4.9

    seg = page.locator("#segments .segment").first
    seg.locator(".seg-text").dblclick()
    seg.locator("textarea").fill("Typed, not saved")
    asked: list[str] = []

    def refuse(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", refuse)
    page.locator("#viewer-close").click()
    expect(page.locator("#viewer-body")).to_be_visible()
    expect(seg.locator("textarea")).to_have_value("Typed, not saved")
    assert asked == ["A correction you typed has not been saved. Close it without saving?"]

    # Leaving the page asks too.
    with page.expect_event("dialog") as leaving:
        page.close(run_before_unload=True)
    assert leaving.value.type == "beforeunload"
    leaving.value.accept()


def test_one_undo_per_click_and_nothing_of_a_task_stays_for_the_next(
    browser: Browser, server: Server, pages: list[Page], eval_root: Path
) -> None:
    page = open_page(browser, server, "desktop", locale="en-US")
    pages.append(page)
    list_with(page, fake_task("no-such-task", "gone.flac", "completed"))
    open_jfk(page, eval_root)
    before = page.locator("#viewer-body").get_attribute("data-revision")
    seg = page.locator("#segments .segment").first
    seg.locator(".seg-text").dblclick()
    area = seg.locator("textarea")
    area.fill(area.input_value().rstrip() + " Indeed.")
    area.press("Enter")
    expect(page.locator("#viewer-body")).not_to_have_attribute("data-revision", before or "")
    expect(page.locator("#undo-edit")).to_be_enabled()
    expect(page.locator("#show-original")).to_be_visible()

    # Another task, whose transcript cannot be read: nothing of the first one stays.
    task_item(page, "gone.flac").locator("button.task-name-button").click()
    expect(page.locator("#viewer-filename")).to_have_text("gone.flac")
    expect(page.locator("#viewer-meta")).to_contain_text("no longer there")
    expect(page.locator("#undo-edit")).to_be_disabled()
    expect(page.locator("#show-original")).to_be_hidden()
    expect(page.locator("#segments .segment")).to_have_count(0)

    # Back on the first: a double click on Undo undoes one edit, not two.
    open_jfk(page, eval_root)
    expect(page.locator("#undo-edit")).to_be_enabled()
    pressable_twice = page.evaluate(
        """() => { const b = document.getElementById('undo-edit');
                   b.click(); const again = !b.disabled; b.click(); return again; }"""
    )
    assert not pressable_twice
    expect(page.locator("#toast")).to_have_text("Edit undone")
    expect(page.locator("#segments .segment").first.locator(".seg-text")).not_to_contain_text(
        "Indeed"
    )
    # Closed, the keyboard is back on the task's Open button.
    page.locator("#viewer-close").click()
    open_button = task_item(page, "jfk.flac").locator(".task-actions button[data-action=open]")
    expect(open_button).to_be_focused()


# --- Errors and connection states ---


def test_a_task_list_that_cannot_be_read_says_so_and_offers_another_try(
    browser: Browser, server: Server, pages: list[Page]
) -> None:
    page = open_page(browser, server, "desktop", locale="en-US")
    pages.append(page)
    down = {"error": {"code": "unavailable", "message": "the job database is unavailable"}}
    page.route("**/api/tasks?limit=200", lambda route: route.fulfill(status=503, json=down))
    page.reload()
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("#tasks-error")).to_contain_text("The task list could not be loaded.")
    expect(page.locator("#tasks-empty")).to_be_hidden()  # not "No tasks yet"
    page.locator("#tasks-error").scroll_into_view_if_needed()
    shot(page, "desktop-list-failed")
    page.unroute("**/api/tasks?limit=200")
    page.locator("#tasks-retry").click()
    expect(page.locator("#tasks-error")).to_be_hidden()
    expect(page.locator("#tasks-empty.empty:visible, li.task").first).to_be_visible()

    # Refused for want of a key, the prompt dismissed: the bar still offers to give one.
    refused = {"error": {"code": "unauthorized", "message": "an API key is required"}}
    page.route("**/api/tasks?limit=200", lambda route: route.fulfill(status=401, json=refused))
    page.reload()
    expect(page.locator("#key-dialog")).to_be_visible()
    page.keyboard.press("Escape")
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("#key-button")).to_be_visible()
    expect(page.locator("#tasks-error")).to_be_visible()


def test_a_proxys_own_error_page_is_worded(
    browser: Browser, server: Server, pages: list[Page], tmp_path: Path
) -> None:
    page = open_page(browser, server, "desktop", locale="en-US")
    pages.append(page)
    nginx = "<html><head><title>413 Request Entity Too Large</title></head></html>"

    def too_large(route: Route) -> None:
        if route.request.method == "POST":
            route.fulfill(status=413, content_type="text/html", body=nginx)
        else:
            route.continue_()

    page.route("**/api/tasks", too_large)
    clip = write_silence(tmp_path / "proxied.wav", 1.0)
    page.set_input_files("#file-input", str(clip))
    item = task_item(page, "proxied.wav")
    expect(item).to_have_attribute("data-status", "rejected")
    expect(item.locator(".task-error")).to_contain_text("The file is too large or too long")


def test_a_link_dropped_on_the_link_field_is_not_swallowed(
    browser: Browser, server: Server, pages: list[Page]
) -> None:
    page = open_page(browser, server, "desktop", locale="en-US")
    pages.append(page)
    kept = page.evaluate(
        """() => { const data = new DataTransfer();
                   data.setData('text/uri-list', 'https://example.org/talk.mp3');
                   const drop = new DragEvent('drop', {dataTransfer: data, bubbles: true,
                                                       cancelable: true});
                   document.getElementById('url-input').dispatchEvent(drop);
                   return !drop.defaultPrevented; }"""
    )
    assert kept, "the page cancelled the browser's own drop of a link into a field"


def test_a_task_deleted_elsewhere_leaves_the_list(
    browser: Browser, server: Server, pages: list[Page]
) -> None:
    page = open_page(browser, server, "desktop", locale="en-US")
    pages.append(page)
    list_with(page, fake_task("deleted-elsewhere", "ghost.flac", "processing"))
    # Its WebSocket is answered "not found": the card goes instead of staying "processing".
    expect(task_item(page, "ghost.flac")).to_have_count(0)


def test_reconnecting_backs_off_while_the_server_closes_at_once(
    browser: Browser, server: Server, pages: list[Page]
) -> None:
    page = open_page(browser, server, "desktop", locale="en-US")
    pages.append(page)
    task = fake_task("db-down", "waiting.flac", "processing")
    opened: list[float] = []
    accepted: list[Any] = []

    def accept(ws: Any) -> None:  # the page's socket opens (no server behind it)...
        opened.append(time.monotonic())
        accepted.append(ws)

    page.route_web_socket(re.compile(r".*/ws/tasks/db-down.*"), accept)
    page.route("**/api/tasks/db-down", lambda route: route.fulfill(json=task))
    list_with(page, task)
    deadline = time.monotonic() + 30
    while len(opened) < 4 and time.monotonic() < deadline:
        # ...and is closed 1013 before any message, as while the job database is down.
        while accepted:
            accepted.pop().close(code=1013, reason="the job database is unavailable")
        page.wait_for_timeout(50)
    assert len(opened) >= 4, opened
    gaps = [b - a for a, b in itertools.pairwise(opened)]
    assert gaps[2] > 3, gaps  # 1 s, 2 s, 4 s: not once a second for ever


def test_dismissing_a_card_puts_the_keyboard_on_the_next(
    browser: Browser, server: Server, pages: list[Page], tmp_path: Path
) -> None:
    page = open_page(browser, server, "desktop", locale="en-US")
    pages.append(page)
    for name in ("first.txt", "second.txt"):
        (tmp_path / name).write_text("not a video\n")
    page.set_input_files("#file-input", [str(tmp_path / "first.txt"), str(tmp_path / "second.txt")])
    for name in ("first.txt", "second.txt"):
        expect(task_item(page, name)).to_have_attribute("data-status", "rejected")
    top = page.locator("li.task").first
    other = "second.txt" if "first.txt" in (top.text_content() or "") else "first.txt"
    top.locator("button[data-action=dismiss]").click()
    expect(task_item(page, other).locator("button[data-action=dismiss]")).to_be_focused()


def test_a_long_name_without_spaces_wraps_in_the_retry_dialog(
    browser: Browser, server: Server, pages: list[Page]
) -> None:
    page = open_page(browser, server, "phone", locale="en-US")
    pages.append(page)
    name = "recording_" + "0123456789abcdef" * 6 + ".flac"
    list_with(page, fake_task("long-name", name, "failed"))
    task_item(page, name).locator("button[data-action=retry]").click()
    dialog = page.locator("#retry-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#retry-name")).to_have_text(name)
    widths = page.evaluate(
        """() => { const d = document.getElementById('retry-dialog');
                   const n = document.getElementById('retry-name');
                   return [d.scrollWidth, d.clientWidth, n.scrollWidth, n.clientWidth]; }"""
    )
    assert widths[0] <= widths[1] and widths[2] <= widths[3], widths
    shot(page, "phone-retry-long-name")
    page.keyboard.press("Escape")
