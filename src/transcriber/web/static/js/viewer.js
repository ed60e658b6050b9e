// The transcript view: a player synced with the segments, speakers, search, copy, download.
import { download, request } from "./api.js";
import { clock } from "./format.js";
import { noticeText, onLangChange, t } from "./i18n.js";
import { errorText, toast } from "./ui.js";

const SPEAKER_COLOURS = 8;
const AUDIO_EXT = /\.(mp3|m4a|aac|ogg|oga|opus|flac|wav|wma|amr)$/i;

export class Viewer {
  constructor() {
    this.emptyEl = document.getElementById("viewer-empty");
    this.bodyEl = document.getElementById("viewer-body");
    this.playerEl = document.getElementById("player");
    this.segmentsEl = document.getElementById("segments");
    this.speakersEl = document.getElementById("speakers");
    this.speakerListEl = document.getElementById("speaker-list");
    this.searchEl = document.getElementById("search");
    this.searchCountEl = document.getElementById("search-count");
    this.task = null;
    this.doc = null;
    document.getElementById("notices").hidden = true;
    this.media = null;
    this.mediaUrl = null;
    this.names = {};
    this.active = -1;
    this.matchIndex = -1;

    document.getElementById("viewer-close").addEventListener("click", () => this.close());
    document.getElementById("copy-text").addEventListener("click", () => this.copy());
    document.getElementById("download").addEventListener("click", () => this.download());
    this.searchEl.addEventListener("input", () => this.search());
    this.searchEl.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        this.nextMatch(e.shiftKey ? -1 : 1);
      }
    });
    this.segmentsEl.addEventListener("click", (e) => {
      const word = e.target.closest(".word");
      const seg = e.target.closest(".segment");
      if (!seg) return;
      const start = word ? Number(word.dataset.start) : Number(seg.dataset.start);
      this.seek(start);
    });
    onLangChange(() => {
      if (this.doc) {
        this.renderMeta();
        this.renderNotices();
        this.renderSpeakers();
        this.renderSegments();
      }
    });
  }

  get openId() {
    return this.task ? this.task.id : null;
  }

  async open(task) {
    this.close();
    this.task = task;
    this.names = loadNames(task.id);
    this.emptyEl.hidden = true;
    this.bodyEl.hidden = false;
    document.getElementById("viewer-filename").textContent = task.filename;
    document.getElementById("viewer-meta").textContent = t("viewer.loading");
    this.segmentsEl.replaceChildren();
    this.bodyEl.setAttribute("aria-busy", "true");
    try {
      const doc = await request(`/api/tasks/${encodeURIComponent(task.id)}/result?format=json`);
      if (this.task !== task) return;
      this.doc = doc;
      this.speakers = speakerOrder(doc.segments);
      this.renderMeta();
      this.renderNotices();
      this.renderSpeakers();
      this.renderSegments();
      this.search();
      this.bodyEl.removeAttribute("aria-busy");
      this.bodyEl.dataset.ready = "true";
      this.loadMedia(task);
    } catch (err) {
      document.getElementById("viewer-meta").textContent = errorText(err);
      this.bodyEl.removeAttribute("aria-busy");
    }
    if (window.matchMedia("(max-width: 960px)").matches) {
      this.bodyEl.scrollIntoView({ behavior: "smooth", block: "start" });
    }
  }

  close() {
    if (this.media) {
      this.media.pause();
      this.media.removeAttribute("src");
      this.media.load();
    }
    if (this.mediaUrl) URL.revokeObjectURL(this.mediaUrl);
    this.media = null;
    this.mediaUrl = null;
    this.task = null;
    this.doc = null;
    document.getElementById("notices").hidden = true;
    this.active = -1;
    this.playerEl.replaceChildren();
    this.segmentsEl.replaceChildren();
    this.searchEl.value = "";
    this.searchCountEl.textContent = "";
    delete this.bodyEl.dataset.ready;
    this.bodyEl.hidden = true;
    this.emptyEl.hidden = false;
  }

  async loadMedia(task) {
    const isAudio = AUDIO_EXT.test(task.filename);
    const media = document.createElement(isAudio ? "audio" : "video");
    media.controls = true;
    media.preload = "metadata";
    media.className = isAudio ? "media media-audio" : "media media-video";
    media.setAttribute("aria-label", task.filename);
    this.media = media;
    this.playerEl.replaceChildren(media);
    media.addEventListener("timeupdate", () => this.sync());
    media.addEventListener("seeked", () => this.sync());
    try {
      // Fetched as a blob: it carries the API key, and a blob is seekable everywhere.
      const res = await request(`/api/tasks/${encodeURIComponent(task.id)}/media`, { raw: true });
      const blob = await res.blob();
      if (this.task !== task) return;
      this.mediaUrl = URL.createObjectURL(blob);
      media.src = this.mediaUrl;
      this.playerEl.dataset.ready = "true";
    } catch (err) {
      if (this.task !== task) return;
      const note = document.createElement("p");
      note.className = "hint";
      note.textContent = err.status === 404 ? t("viewer.mediaGone") : errorText(err);
      this.playerEl.replaceChildren(note);
    }
  }

  renderMeta() {
    const doc = this.doc;
    const parts = [clock(doc.duration)];
    if (doc.language) parts.push(t("viewer.meta.language", { lang: doc.language.toUpperCase() }));
    parts.push(t("viewer.meta.segments", { n: doc.segments.length }));
    document.getElementById("viewer-meta").textContent = parts.join(" · ");
  }

  renderNotices() {
    const list = document.getElementById("notices");
    const notices = (this.doc.metadata && this.doc.metadata.warnings) || [];
    list.replaceChildren(
      ...notices.map((n) => {
        const item = document.createElement("li");
        item.dataset.code = n.code;
        item.textContent = noticeText(n);
        return item;
      }),
    );
    list.hidden = notices.length === 0;
  }

  name(label) {
    return (label && this.names[label]) || label;
  }

  colour(label) {
    return this.speakers.indexOf(label) % SPEAKER_COLOURS;
  }

  renderSpeakers() {
    this.speakersEl.hidden = this.speakers.length === 0;
    this.speakerListEl.replaceChildren(
      ...this.speakers.map((label, i) => {
        const row = document.createElement("div");
        row.className = "speaker-edit";
        row.dataset.colour = String(this.colour(label));
        const id = `speaker-name-${i}`;
        const lab = document.createElement("label");
        lab.htmlFor = id;
        lab.className = "speaker-chip";
        lab.textContent = label;
        lab.title = t("viewer.rename", { label });
        const input = document.createElement("input");
        input.id = id;
        input.type = "text";
        input.value = this.names[label] || "";
        input.placeholder = label;
        input.dataset.speaker = label;
        input.setAttribute("aria-label", t("viewer.rename", { label }));
        input.addEventListener("input", () => {
          const value = input.value.trim();
          if (value) this.names[label] = value;
          else delete this.names[label];
          saveNames(this.task.id, this.names);
          for (const badge of this.segmentsEl.querySelectorAll(".speaker")) {
            if (badge.dataset.speaker === label) badge.textContent = this.name(label);
          }
        });
        row.append(lab, input);
        return row;
      }),
    );
  }

  renderSegments() {
    const segs = this.doc.segments;
    if (!segs.length) {
      const li = document.createElement("li");
      li.className = "segments-empty";
      li.textContent = t("viewer.noSegments");
      this.segmentsEl.replaceChildren(li);
      return;
    }
    const frag = document.createDocumentFragment();
    segs.forEach((seg, i) => {
      const li = document.createElement("li");
      li.className = "segment";
      li.dataset.index = String(i);
      li.dataset.start = String(seg.start);
      li.dataset.end = String(seg.end);
      const time = document.createElement("button");
      time.type = "button";
      time.className = "seg-time";
      time.textContent = clock(seg.start);
      time.setAttribute("aria-label", t("viewer.seek", { time: clock(seg.start) }));
      const body = document.createElement("div");
      body.className = "seg-body";
      if (seg.speaker) {
        const badge = document.createElement("span");
        badge.className = "speaker";
        badge.dataset.speaker = seg.speaker;
        badge.dataset.colour = String(this.colour(seg.speaker));
        badge.textContent = this.name(seg.speaker);
        li.dataset.colour = badge.dataset.colour;
        body.append(badge);
      }
      const text = document.createElement("p");
      text.className = "seg-text";
      body.append(text);
      li.append(time, body);
      frag.append(li);
      this.fillText(text, seg, "");
    });
    this.segmentsEl.replaceChildren(frag);
    this.active = -1;
    this.sync();
  }

  /** Words as clickable spans; with a search query, the plain text with matches marked. */
  fillText(el, seg, query) {
    el.replaceChildren();
    if (query) {
      const text = seg.text;
      const lower = text.toLocaleLowerCase();
      let from = 0;
      let n = 0;
      for (let at = lower.indexOf(query); at !== -1; at = lower.indexOf(query, from)) {
        el.append(text.slice(from, at));
        const mark = document.createElement("mark");
        mark.textContent = text.slice(at, at + query.length);
        el.append(mark);
        from = at + query.length;
        n += 1;
      }
      el.append(text.slice(from));
      return n;
    }
    if (seg.words && seg.words.length) {
      for (const w of seg.words) {
        const lead = /^\s/.test(w.word);
        if (lead && el.childNodes.length) el.append(" ");
        const span = document.createElement("span");
        span.className = "word";
        span.dataset.start = String(w.start);
        span.dataset.end = String(w.end);
        span.textContent = w.word.trim();
        el.append(span);
      }
    } else {
      el.textContent = seg.text;
    }
    return 0;
  }

  search() {
    if (!this.doc) return;
    const query = this.searchEl.value.trim().toLocaleLowerCase();
    let total = 0;
    this.segmentsEl.querySelectorAll(".segment").forEach((li, i) => {
      const n = this.fillText(li.querySelector(".seg-text"), this.doc.segments[i], query);
      li.classList.toggle("has-match", n > 0);
      total += n;
    });
    this.matchIndex = -1;
    this.searchCountEl.textContent = query
      ? total
        ? t("viewer.matches", { n: total })
        : t("viewer.noMatches")
      : "";
    this.active = -1;
    this.sync();
  }

  nextMatch(step) {
    const marks = [...this.segmentsEl.querySelectorAll("mark")];
    if (!marks.length) return;
    marks.forEach((m) => m.classList.remove("current"));
    this.matchIndex = (this.matchIndex + step + marks.length) % marks.length;
    const mark = marks[this.matchIndex];
    mark.classList.add("current");
    mark.scrollIntoView({ block: "center", behavior: "smooth" });
  }

  seek(seconds) {
    if (!this.media || !Number.isFinite(seconds)) return;
    this.media.currentTime = seconds + 0.01;
    this.sync();
    const played = this.media.play();
    if (played) played.catch(() => {});
  }

  /** Highlight the segment (and word) under the playhead. */
  sync() {
    if (!this.doc || !this.media) return;
    const now = this.media.currentTime;
    const segs = this.doc.segments;
    let index = -1;
    // Segments are ordered by start; with split channels they overlap: the latest start wins.
    let lo = 0;
    let hi = segs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (segs[mid].start <= now) {
        index = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (index !== -1 && now > segs[index].end + 0.5) index = -1;
    const items = this.segmentsEl.children;
    if (index !== this.active) {
      if (this.active >= 0 && items[this.active]) {
        items[this.active].classList.remove("active");
        items[this.active].removeAttribute("aria-current");
      }
      this.active = index;
      const li = index >= 0 ? items[index] : null;
      if (li && li.classList.contains("segment")) {
        li.classList.add("active");
        li.setAttribute("aria-current", "true");
        if (!this.media.paused) scrollWithin(this.segmentsEl, li);
      }
    }
    const li = index >= 0 ? items[index] : null;
    for (const w of this.segmentsEl.querySelectorAll(".word.current")) w.classList.remove("current");
    if (li) {
      for (const w of li.querySelectorAll(".word")) {
        if (Number(w.dataset.start) <= now && now < Number(w.dataset.end)) w.classList.add("current");
      }
    }
  }

  plainText() {
    const lines = [];
    let turn = null;
    for (const seg of this.doc.segments) {
      const text = seg.text.trim();
      if (!text) continue;
      if (!seg.speaker) lines.push(text);
      else if (seg.speaker === turn) lines[lines.length - 1] += ` ${text}`;
      else lines.push(`${this.name(seg.speaker)}: ${text}`);
      turn = seg.speaker;
    }
    return lines.join("\n");
  }

  async copy() {
    if (!this.doc) return;
    const text = this.plainText();
    try {
      await navigator.clipboard.writeText(text);
      toast(t("viewer.copied"));
    } catch {
      // No clipboard permission (plain HTTP on another host): fall back to a selection copy.
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "visually-hidden";
      document.body.append(area);
      area.select();
      const ok = document.execCommand("copy");
      area.remove();
      toast(ok ? t("viewer.copied") : t("viewer.copyFailed"), ok ? "info" : "error");
    }
  }

  async download() {
    if (!this.task) return;
    const format = document.getElementById("download-format").value;
    const params = new URLSearchParams({ format });
    if (Object.keys(this.names).length) params.set("speaker_names", JSON.stringify(this.names));
    try {
      await download(`/api/tasks/${encodeURIComponent(this.task.id)}/export?${params}`);
    } catch (err) {
      toast(errorText(err), "error");
    }
  }
}

function speakerOrder(segments) {
  const seen = [];
  for (const seg of segments) if (seg.speaker && !seen.includes(seg.speaker)) seen.push(seg.speaker);
  // "channel 2" before "channel 10", "A" before "B": the order people expect to read them in.
  return seen.sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
}

function loadNames(id) {
  try {
    return JSON.parse(localStorage.getItem(`transcriber.names.${id}`)) || {};
  } catch {
    return {};
  }
}

function saveNames(id, names) {
  localStorage.setItem(`transcriber.names.${id}`, JSON.stringify(names));
}

function scrollWithin(container, el) {
  const box = container.getBoundingClientRect();
  const r = el.getBoundingClientRect();
  if (r.top < box.top || r.bottom > box.bottom) {
    container.scrollTo({ top: container.scrollTop + r.top - box.top - box.height / 3, behavior: "smooth" });
  }
}
