"""The browser UI: one server-rendered page at `/`; its scripts and styles live under /static.

The page is plain HTML with `{{t:key}}` placeholders filled from the message catalogue of
the chosen language, so it reads correctly before any script runs. No template engine.
"""

from __future__ import annotations

import html
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from transcriber import __version__

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
STATIC_DIR = WEB_DIR / "static"
TEMPLATE = WEB_DIR / "templates" / "index.html"
LANGUAGES = ("en", "ru")
DEFAULT_LANGUAGE = "en"
_PLACEHOLDER = re.compile(r"\{\{\s*(t:[\w.]+|lang|version|catalogue)\s*\}\}")

router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=len(LANGUAGES))
def catalogue(lang: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((STATIC_DIR / "i18n" / f"{lang}.json").read_text("utf-8"))
    return data


def _supported(tag: str) -> str | None:
    base = tag.strip().lower().split("-")[0].split("_")[0]
    return base if base in LANGUAGES else None


def pick_language(query: str | None, cookie: str | None, accept: str | None) -> str:
    """`?lang=` wins, then the language chosen earlier (cookie), then Accept-Language."""
    for explicit in (query, cookie):
        if explicit and (lang := _supported(explicit)):
            return lang
    best, best_q = DEFAULT_LANGUAGE, -1.0
    for part in (accept or "").split(","):
        tag, _, params = part.partition(";")
        lang = _supported(tag)
        if lang is None:
            continue
        q = 1.0
        for p in params.split(";"):
            name, _, value = p.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > best_q:  # the first of equal weights wins, as the header lists them by preference
            best, best_q = lang, q
    return best if best_q > 0 else DEFAULT_LANGUAGE


def render_page(lang: str) -> str:
    messages = catalogue(lang)
    # Inline JSON inside <script>: "<" escaped so no string can close the element.
    inline = json.dumps(messages, ensure_ascii=False).replace("<", "\\u003c")

    def fill(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "lang":
            return lang
        if name == "version":
            return __version__
        if name == "catalogue":
            return inline
        key = name[2:]
        return html.escape(messages.get(key, key))

    return _PLACEHOLDER.sub(fill, TEMPLATE.read_text("utf-8"))


@router.get("/", response_class=HTMLResponse)
def index(
    request: Request,
    lang: Annotated[str | None, Query(description="en or ru; overrides Accept-Language")] = None,
) -> HTMLResponse:
    chosen = pick_language(
        lang, request.cookies.get("lang"), request.headers.get("accept-language")
    )
    headers: dict[str, Any] = {"Content-Language": chosen, "Vary": "Accept-Language, Cookie"}
    return HTMLResponse(render_page(chosen), headers=headers)
