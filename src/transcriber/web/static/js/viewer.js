// The transcript view: a streamed player with a timeline, synced segments that can be
// corrected, speakers that can be named, search, copy and downloads.
import { download, mediaUrl, request } from "./api.js";
import { Editor } from "./editor.js";
import { clock } from "./format.js";
import { noticeText, onLangChange, t } from "./i18n.js";
import { Timeline } from "./timeline.js";
import { errorText, reveal, toast } from "./ui.js";

const SPEAKER_COLOURS = 8;
const AUDIO_EXT = /\.(mp3|m4a|aac|ogg|oga|opus|flac|wav|wma|amr)$/i;
const RENAME_WAIT_MS = 700;

export class Viewer {
  constructor({ onOpened, onClosed } = {}) {
    this.onOpened = onOpened || (() => {});
    this.onClosed = onClosed || (() => {});
    this.emptyEl = document.getElementById("viewer-empty");
    this.bodyEl = document.getElementById("viewer-body");
    this.playerEl = document.getElementById("player");
    this.segmentsEl = document.getElementById("segments");
    this.speakersEl = document.getElementById("speakers");
    this.speakerListEl = document.getElementById("speaker-list");
    this.searchEl = document.getElementById("search");
    this.searchCountEl = document.getElementById("search-count");
    this.undoEl = document.getElementById("undo-edit");
    this.compareEl = document.getElementById("show-original");
    this.task = null;
    this.view = null;
    this.doc = null;
    this.media = null;
    this.names = {};
    this.speakers = [];
    this.active = -1;
    this.matchIndex = -1;
    this.renameTimers = {};
    this.undoing = false;
    this.editor = new Editor(this);
    this.timeline = new Timeline(
      document.getElementById("timeline"),
      document.getElementById("timeline-canvas"),
      (s) => this.seek(s, false),
    );
    document.getElementById("notices").hidden = true;

    document.getElementById("viewer-close").addEventListener("click", () => {
      if (!this.mayLeave()) return;
      const id = this.openId;
      this.close();
      // The keyboard goes back to the task that was open, not to the page's start.
      if (id) this.onClosed(id);
    });
    // Leaving the page with a correction typed, a name not sent yet or a save on its way.
    window.addEventListener("beforeunload", (e) => {
      if (!this.unsavedWork()) return;
      e.preventDefault();
      e.returnValue = "";
    });
    document.getElementById("copy-text").addEventListener("click", () => this.copy());
    document.getElementById("download").addEventListener("click", () => this.download());
    // The download options are a small panel: a click elsewhere or Esc closes it.
    const exportEl = document.getElementById("export");
    document.addEventListener("click", (e) => {
      if (exportEl.open && !exportEl.contains(e.target)) exportEl.open = false;
    });
    exportEl.addEventListener("keydown", (e) => {
      if (e.key !== "Escape" || !exportEl.open) return;
      e.stopPropagation();
      exportEl.open = false;
      exportEl.querySelector("summary").focus();
    });
    // One click, one undo: the button waits for the server before it can be pressed again.
    this.undoEl.addEventListener("click", async () => {
      if (this.undoing) return;
      this.undoing = true;
      this.undoEl.disabled = true;
      try {
        await this.editor.undo();
      } finally {
        this.undoing = false;
        this.undoEl.disabled = !(this.view && this.view.can_undo);
      }
    });
    this.compareEl.addEventListener("click", () => {
      const on = this.compareEl.getAttribute("aria-pressed") !== "true";
      this.compareEl.setAttribute("aria-pressed", String(on));
      this.segmentsEl.classList.toggle("comparing", on);
    });
    this.searchEl.addEventListener("input", () => this.search());
    this.searchEl.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        this.nextMatch(e.shiftKey ? -1 : 1);
      }
    });
    this.segmentsEl.addEventListener("click", (e) => {
      const seg = e.target.closest(".segment");
      if (!seg || e.target.closest(".seg-form")) return;
      if (e.target.closest(".seg-edit")) {
        this.edit(seg);
        return;
      }
      const word = e.target.closest(".word");
      this.seek(word ? Number(word.dataset.start) : Number(seg.dataset.start));
    });
    this.segmentsEl.addEventListener("dblclick", (e) => {
      const seg = e.target.closest(".segment");
      if (seg && !e.target.closest(".seg-form")) this.edit(seg);
    });
    onLangChange(() => {
      if (this.doc) this.renderAll();
    });
    // Back on this tab: another device may have corrected the transcript meanwhile.
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && this.view) this.refresh();
    });
  }

  get openId() {
    return this.task ? this.task.id : null;
  }

  transcriptPath(task) {
    return `/api/tasks/${encodeURIComponent(task.id)}`;
  }

  /** Whether the open transcript may be left: no changed form, or the reader agrees. */
  mayLeave() {
    return !this.editor.changed() || confirm(t("editor.confirmLeave"));
  }

  /** A correction typed, a speaker's name waiting to be sent, or a save under way. */
  unsavedWork() {
    return this.editor.changed() || Object.keys(this.renameTimers).length > 0 || this.editor.pending > 0;
  }

  async open(task) {
    // The transcript already open stays as it is (forms, playback): it is only shown.
    if (this.task && this.task.id === task.id && this.view) {
      reveal(this.bodyEl, "start");
      return;
    }
    if (!this.mayLeave()) return;
    this.close();
    this.task = task;
    this.emptyEl.hidden = true;
    this.bodyEl.hidden = false;
    document.getElementById("viewer-filename").textContent = task.filename;
    document.getElementById("viewer-meta").textContent = t("viewer.loading");
    this.segmentsEl.replaceChildren();
    this.bodyEl.setAttribute("aria-busy", "true");
    this.onOpened(task.id);
    // At every width the transcript comes into view; the player starts loading at once.
    reveal(this.bodyEl, "start");
    this.loadMedia(task);
    try {
      const view = await request(`${this.transcriptPath(task)}/transcript`);
      if (this.task !== task) return;
      this.applyView(view);
      this.bodyEl.removeAttribute("aria-busy");
      this.bodyEl.dataset.ready = "true";
      this.loadPeaks(task);
    } catch (err) {
      if (this.task !== task) return;
      document.getElementById("viewer-meta").textContent = errorText(err);
      this.bodyEl.removeAttribute("aria-busy");
    }
  }

  /** Show the server's editor view of the transcript (after opening, or a change). */
  applyView(view) {
    const focused = document.activeElement && document.activeElement.closest(".segment");
    const focusId = focused ? focused.dataset.id : null;
    this.view = view;
    this.doc = view.transcript;
    this.names = { ...view.speaker_names };
    this.speakers = speakerOrder(this.doc.segments);
    this.bodyEl.dataset.revision = String(view.revision);
    this.renderAll();
    this.timeline.setTurns(this.doc.segments, (label) => this.colour(label));
    // A form opened again on its draft has the focus back already.
    if (focusId && !this.segmentsEl.contains(document.activeElement)) {
      const back = this.segmentsEl.querySelector(`.segment[data-id="${focusId}"] .seg-edit`);
      if (back) back.focus();
    }
  }

  /** Read the transcript again (a conflict, or another device changed it). */
  async reload() {
    if (!this.task) return;
    const task = this.task;
    try {
      const view = await request(`${this.transcriptPath(task)}/transcript`);
      if (this.task === task) this.applyView(view);
    } catch (err) {
      toast(errorText(err), "error");
    }
  }

  async refresh() {
    const task = this.task;
    try {
      const view = await request(`${this.transcriptPath(task)}/transcript`);
      const editing = this.segmentsEl.querySelector(".seg-form");
      if (this.task === task && view.revision !== this.view.revision && !editing) this.applyView(view);
    } catch {
      // offline for now: the next save will tell
    }
  }

  renderAll() {
    this.renderMeta();
    this.renderNotices();
    this.renderSpeakers();
    this.renderSegments();
    this.search();
    this.undoEl.disabled = this.undoing || !this.view.can_undo;
    this.compareEl.hidden = this.view.edited.length === 0;
  }

  close() {
    if (this.media) {
      this.media.pause();
      this.media.removeAttribute("src");
      this.media.load();
    }
    const wasOpen = this.task !== null;
    this.media = null;
    this.task = null;
    this.view = null;
    this.doc = null;
    document.getElementById("notices").hidden = true;
    this.active = -1;
    this.playerEl.replaceChildren();
    delete this.playerEl.dataset.ready;
    this.segmentsEl.replaceChildren();
    // Nothing of this task stays for the next: its speakers, Undo, the comparison, names
    // waiting to be saved.
    for (const timer of Object.values(this.renameTimers)) clearTimeout(timer);
    this.renameTimers = {};
    this.names = {};
    this.speakers = [];
    this.speakersEl.hidden = true;
    this.speakerListEl.replaceChildren();
    this.undoEl.disabled = true;
    this.compareEl.hidden = true;
    this.compareEl.setAttribute("aria-pressed", "false");
    this.segmentsEl.classList.remove("comparing");
    this.searchEl.value = "";
    this.searchCountEl.textContent = "";
    this.timeline.reset();
    delete this.bodyEl.dataset.ready;
    this.bodyEl.hidden = true;
    this.emptyEl.hidden = false;
    if (wasOpen) this.onOpened(null);
  }

  /** The media streams from the server: the browser asks for byte ranges as it plays
   * and seeks, so a large file starts at once and is never held whole. */
  loadMedia(task) {
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
    media.addEventListener("loadedmetadata", () => {
      // A video container with no picture (a film's audio in .mkv, a call in .mp4)
      // plays as audio: no empty black frame.
      if (!isAudio && media.videoWidth === 0) media.className = "media media-audio";
      this.playerEl.dataset.ready = "true";
      this.timeline.setDuration(media.duration);
    });
    media.addEventListener("error", () => {
      if (this.media !== media) return;
      const note = document.createElement("p");
      note.className = "hint";
      note.textContent = t("viewer.mediaGone");
      this.playerEl.replaceChildren(note);
    });
    media.src = mediaUrl(`${this.transcriptPath(task)}/media`);
  }

  async loadPeaks(task) {
    const width = Math.min(2000, Math.max(200, Math.round(this.timeline.el.clientWidth || 800)));
    try {
      const peaks = await request(`${this.transcriptPath(task)}/peaks?width=${width}`);
      if (this.task !== task) return;
      const end = peaks.start + peaks.seconds_per_peak * peaks.peaks.length;
      if (!this.timeline.duration) this.timeline.setDuration(Math.max(end, this.doc.duration));
      this.timeline.setPeaks(peaks);
    } catch {
      // No waveform (media removed): the speakers' turns are drawn all the same.
      if (this.task === task && !this.timeline.duration) this.timeline.setDuration(this.doc.duration);
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
    return Math.max(0, this.speakers.indexOf(label)) % SPEAKER_COLOURS;
  }

  renderSpeakers() {
    this.speakersEl.hidden = this.speakers.length === 0;
    const inputs = [...this.speakerListEl.querySelectorAll("input[data-speaker]")];
    const same =
      inputs.length === this.speakers.length && inputs.every((input, i) => input.dataset.speaker === this.speakers[i]);
    if (same) {
      // The same speakers: the fields stay (and the focus in them), only their words change.
      for (const input of inputs) this.fillSpeaker(input);
      return;
    }
    const active = document.activeElement;
    const typing = inputs.includes(active) ? { label: active.dataset.speaker, value: active.value } : null;
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
        input.maxLength = 100;
        input.dataset.speaker = label;
        this.fillSpeaker(input);
        const pen = document.createElement("span");
        pen.className = "speaker-pen";
        pen.setAttribute("aria-hidden", "true");
        input.addEventListener("input", () => {
          const value = input.value.trim();
          if (value) this.names[label] = value;
          else delete this.names[label];
          for (const badge of this.segmentsEl.querySelectorAll(".speaker")) {
            if (badge.dataset.speaker === label) badge.textContent = this.name(label);
          }
          this.scheduleRename(label, value);
        });
        input.addEventListener("change", () => this.scheduleRename(label, input.value.trim(), 0));
        row.append(lab, input, pen);
        return row;
      }),
    );
    const back = typing && this.speakerListEl.querySelector(`input[data-speaker="${CSS.escape(typing.label)}"]`);
    if (back) {
      back.value = typing.value;
      back.focus();
    }
  }

  /** A speaker's field in the page's language, with the saved name unless it is being
   * typed (focused, or waiting to be sent): that one is kept, and shown on the segments. */
  fillSpeaker(input) {
    const label = input.dataset.speaker;
    const chip = input.labels && input.labels[0];
    if (chip) chip.title = t("viewer.rename", { label });
    input.placeholder = t("viewer.renamePlaceholder");
    input.setAttribute("aria-label", t("viewer.rename", { label }));
    if (input.isConnected && (input === document.activeElement || label in this.renameTimers)) {
      const value = input.value.trim();
      if (value) this.names[label] = value;
      else delete this.names[label];
    } else {
      input.value = this.names[label] || "";
    }
  }

  /** Save a speaker's name once typing pauses (or at once when the field is left). */
  scheduleRename(label, value, wait = RENAME_WAIT_MS) {
    clearTimeout(this.renameTimers[label]);
    const task = this.task;
    this.renameTimers[label] = setTimeout(() => {
      delete this.renameTimers[label];
      if (!this.view || this.task !== task) return;
      const saved = (this.view.speaker_names || {})[label] || "";
      if (saved === value) return;
      this.editor.save({ speaker_names: { [label]: value } }, { done: t("editor.renamed") });
    }, wait);
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
    // Forms open on other segments are put back with what was typed in them.
    const drafts = this.editor.drafts();
    const edited = new Set(this.view.edited);
    const frag = document.createDocumentFragment();
    segs.forEach((seg, i) => {
      const li = document.createElement("li");
      li.className = "segment";
      li.dataset.index = String(i);
      li.dataset.id = String(seg.id);
      li.dataset.start = String(seg.start);
      li.dataset.end = String(seg.end);
      const time = document.createElement("button");
      time.type = "button";
      time.className = "seg-time";
      time.textContent = clock(seg.start);
      time.setAttribute("aria-label", t("viewer.seek", { time: clock(seg.start) }));
      const body = document.createElement("div");
      body.className = "seg-body";
      const head = document.createElement("div");
      head.className = "seg-head";
      if (seg.speaker) {
        const badge = document.createElement("span");
        badge.className = "speaker";
        badge.dataset.speaker = seg.speaker;
        badge.dataset.colour = String(this.colour(seg.speaker));
        badge.textContent = this.name(seg.speaker);
        li.dataset.colour = badge.dataset.colour;
        head.append(badge);
      }
      if (edited.has(seg.id)) {
        li.classList.add("edited");
        const mark = document.createElement("span");
        mark.className = "seg-edited";
        mark.textContent = t("viewer.edited");
        head.append(mark);
      }
      if (head.childNodes.length) body.append(head);
      const text = document.createElement("p");
      text.className = "seg-text";
      body.append(text);
      const machine = this.view.original[String(seg.id)];
      if (machine) {
        const was = document.createElement("p");
        was.className = "seg-original";
        const label = document.createElement("span");
        label.className = "seg-original-label";
        label.textContent = t("editor.machine");
        was.append(label, ` ${machine.text}`);
        body.append(was);
      }
      const pen = document.createElement("button");
      pen.type = "button";
      pen.className = "seg-edit";
      pen.setAttribute("aria-label", t("editor.edit", { time: clock(seg.start) }));
      pen.title = t("editor.edit", { time: clock(seg.start) });
      li.append(time, body, pen);
      frag.append(li);
      this.fillText(text, seg, "");
    });
    this.segmentsEl.replaceChildren(frag);
    this.active = -1;
    this.sync();
    this.editor.restore(drafts);
  }

  edit(li) {
    const seg = this.doc.segments[Number(li.dataset.index)];
    if (seg) this.editor.open(li, seg);
  }

  /** The segment under the playhead (or the first) gets the correction form. */
  editCurrent() {
    if (!this.doc) return;
    const items = this.segmentsEl.querySelectorAll(".segment");
    const li = items[this.active >= 0 ? this.active : 0];
    if (li) {
      reveal(li);
      this.edit(li);
    }
  }

  /** Words as clickable spans; with a search query, the plain text with matches marked. */
  fillText(el, seg, query) {
    el.replaceChildren();
    if (!seg.text) {
      el.textContent = t("editor.removed");
      el.classList.add("removed");
      return 0;
    }
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

  seek(seconds, play = true) {
    if (!this.media || !Number.isFinite(seconds)) return;
    this.media.currentTime = Math.max(0, seconds + 0.01);
    this.sync();
    if (!play) return;
    const played = this.media.play();
    if (played) played.catch(() => {});
  }

  togglePlay() {
    if (!this.media) return;
    if (this.media.paused) {
      const played = this.media.play();
      if (played) played.catch(() => {});
    } else this.media.pause();
  }

  skip(seconds) {
    if (this.media) this.seek(this.media.currentTime + seconds, !this.media.paused);
  }

  focusSearch() {
    if (this.doc) this.searchEl.focus();
  }

  /** Highlight the segment (and word) under the playhead. */
  sync() {
    if (!this.doc || !this.media) return;
    const now = this.media.currentTime;
    this.timeline.setTime(now);
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
    if (!document.getElementById("export-speakers").checked) params.set("speaker_labels", "false");
    if (format === "srt" || format === "vtt") {
      params.set("max_line", document.getElementById("export-line").value);
    }
    // Names typed but not saved yet go along, so the file has what the page shows.
    if (Object.keys(this.names).length) params.set("speaker_names", JSON.stringify(this.names));
    document.getElementById("export").open = false;
    try {
      await download(`${this.transcriptPath(this.task)}/export?${params}`);
    } catch (err) {
      toast(errorText(err), "error");
    }
  }
}

/** Labels in reading order: "A" before "B", "channel 2" before "channel 10". */
function speakerOrder(segments) {
  const seen = new Set();
  for (const seg of segments) if (seg.speaker) seen.add(seg.speaker);
  return [...seen].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
}

function scrollWithin(container, el) {
  const box = container.getBoundingClientRect();
  const r = el.getBoundingClientRect();
  if (container.scrollHeight <= container.clientHeight) {
    // The page itself scrolls (a phone): keep the segment below the sticky player.
    const player = document.getElementById("player-wrap").getBoundingClientRect();
    if (r.top < player.bottom || r.bottom > window.innerHeight) {
      window.scrollBy({ top: r.top - player.bottom - 12, behavior: "smooth" });
    }
    return;
  }
  if (r.top < box.top || r.bottom > box.bottom) {
    container.scrollTo({ top: container.scrollTop + r.top - box.top - box.height / 3, behavior: "smooth" });
  }
}
