"""Word (.docx): a readable document for people who edit transcripts in an office suite."""

from __future__ import annotations

import io
import re

from transcriber.domain import Transcript

# XML 1.0 forbids most control characters and lxml refuses them; a stray one in model
# output must not cost the user the whole document.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text)


def clock(seconds: float) -> str:
    """`HH:MM:SS`, truncated: a reader looks a moment up by the second it starts in."""
    total = max(int(seconds), 0)
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def render(transcript: Transcript) -> bytes:
    # Imported here: python-docx pulls in lxml, which other formats never need.
    from docx import Document

    doc = Document()
    doc.core_properties.title = "Transcript"
    if transcript.language:
        doc.core_properties.language = transcript.language
    doc.add_heading("Transcript", level=1)
    language = transcript.language or "unknown"
    doc.add_paragraph(f"Language: {language} · Duration: {clock(transcript.duration)}")
    for notice in transcript.notices:  # what to know before reading: damage, a guess
        doc.add_paragraph(f"Note: {_clean(notice.message)}", style="List Bullet")
    for seg in transcript.segments:
        text = _clean(" ".join(seg.text.split()))
        if not text:
            continue
        para = doc.add_paragraph()
        para.add_run(f"[{clock(seg.start)}]").bold = True
        if seg.speaker:
            para.add_run(f" {_clean(seg.speaker)}:").bold = True
        para.add_run(f" {text}")
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()
