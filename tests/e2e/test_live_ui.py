"""The Live tab in a real browser: Chromium's fake microphone plays real Russian speech
from ../shared/eval; partial (grey) and final (black) text appear with the elapsed time
and the level, and stopping opens the saved task. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import eval_rows
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.test_web_ui import ARTIFACTS
from tests.integration.test_serve import Server
from tests.media_factory import load
from transcriber.evaluation.wer import normalize

pytestmark = pytest.mark.slow

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get("CI"):
        raise
    pytest.skip("playwright is not installed (pip install -e '.[dev]')", allow_module_level=True)

CLIP = "ru_more/asterisk_ru/core/agent-newlocation.wav"  # 7.8 s of one voice, no pause


@pytest.fixture(scope="module")
def microphone(tmp_path_factory: pytest.TempPathFactory, eval_root: Path) -> Path:
    """The clip with 1.5 s of silence after it, as the fake microphone plays it (looped)."""
    audio = load(eval_root / CLIP)
    audio = np.concatenate([audio, np.zeros(24000, np.float32)])
    path = tmp_path_factory.mktemp("mic") / "speech.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((audio.clip(-1, 1) * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture(scope="module")
def browser(microphone: Path) -> Iterator[Browser]:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: apt-get install -y chromium")
        pytest.skip("chromium is absent (apt-get install -y chromium): browser tests skipped")
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}",
    ]
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=args)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("live-web"), model_cache)
    s.start()
    yield s
    s.kill()


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US")
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(server.url + "/?lang=en")
    pg.wait_for_selector("body[data-ready]")
    yield pg
    context.close()
    assert not errors, errors


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_live_tab_records_shows_partials_and_finals_and_opens_the_task(page: Page) -> None:
    reference = set(
        normalize(next(r["text"] for r in eval_rows("asr.jsonl") if r["path"] == CLIP), "ru")
    )
    page.click("#tab-live")
    expect(page.locator("#live-panel")).to_be_visible()
    expect(page.locator("#upload-card")).to_be_hidden()
    page.select_option("#live-language", "ru")
    # Keep every partial the page shows: they come and go between finals.
    page.evaluate(
        """() => {
        window.partials = [];
        new MutationObserver(() => {
          const text = document.getElementById('live-partial').textContent.trim();
          if (text) window.partials.push(text);
        }).observe(document.getElementById('live-partial'),
                   {childList: true, characterData: true, subtree: true});
    }"""
    )
    page.click("#live-button")
    expect(page.locator("#live-panel")).to_have_attribute("data-state", "recording", timeout=30_000)
    expect(page.locator("#live-button")).to_have_text("Stop")
    page.wait_for_function("document.getElementById('live-meter').value > 0.01", timeout=15_000)
    page.wait_for_function("window.partials.length > 0", timeout=60_000)
    expect(page.locator("#live-finals .live-final").first).to_be_visible(timeout=60_000)
    page.wait_for_function(
        "document.getElementById('live-partial').textContent.trim().length > 0", timeout=60_000
    )
    shot(page, "live-recording")
    colours = page.evaluate(
        """() => [getComputedStyle(document.querySelector('.live-final')).color,
                 getComputedStyle(document.getElementById('live-partial')).color]"""
    )
    assert colours[0] != colours[1]  # final text black, partial grey
    assert page.locator("#live-time").text_content() not in ("", "0:00")
    finals = page.locator("#live-finals").text_content() or ""
    heard = set(normalize(finals, "ru"))
    assert len(heard & reference) >= 3, finals
    partial_words = {w for p in page.evaluate("window.partials") for w in normalize(p, "ru")}
    assert partial_words & reference, page.evaluate("window.partials")

    page.click("#live-button")  # stop: the last words are finished and the task opens
    expect(page.locator("#viewer-body")).to_have_attribute("data-ready", "true", timeout=60_000)
    expect(page.locator("#viewer-filename")).to_contain_text("live-")
    expect(page.locator("#player audio")).to_have_count(1)
    expect(page.locator("#live-panel")).to_have_attribute("data-state", "idle")
    item = page.locator("li.task", has_text="live-").first
    expect(item).to_have_attribute("data-status", "completed")
    saved = set(normalize(page.locator("#segments").text_content() or "", "ru"))
    assert len(saved & reference) >= 3
    shot(page, "live-saved")


def test_live_tab_in_russian(page: Page) -> None:
    page.select_option("#ui-lang", "ru")
    expect(page.locator("#tab-live")).to_have_text("Вживую")
    page.locator("#tab-live").focus()
    page.keyboard.press("ArrowLeft")  # the tabs follow the arrow keys
    expect(page.locator("#tab-files")).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#live-button")).to_have_text("Начать запись")
    expect(page.locator("#live-meter")).to_have_attribute("aria-label", "Уровень микрофона")
    shot(page, "live-ru")


def test_live_tab_over_plain_http_asks_for_https(browser: Browser, server: Server) -> None:
    """Over plain HTTP on another host the browser has no navigator.mediaDevices: the page
    says the microphone needs HTTPS, not that there is none. (127.0.0.1 is a secure
    context, so the insecure one is made here as the browser makes it.)"""
    context = browser.new_context(locale="en-US")
    context.add_init_script(
        """Object.defineProperty(window, 'isSecureContext', {get: () => false});
           Object.defineProperty(Navigator.prototype, 'mediaDevices', {get: () => undefined});"""
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/?lang=en")
    page.wait_for_selector("body[data-ready]")
    page.click("#tab-live")
    page.click("#live-button")
    expect(page.locator("#live-status")).to_contain_text("only to pages opened over HTTPS")
    expect(page.locator("#live-panel")).to_have_attribute("data-state", "idle")
    context.close()
    assert not errors, errors
