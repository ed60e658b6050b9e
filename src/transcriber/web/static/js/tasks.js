// The task list: uploads in flight, then tasks, each kept live by its own WebSocket.
import { ApiError, askForKey, request, uploadFile, wsUrl } from "./api.js";
import { bytes, clock, dateTime, percent } from "./format.js";
import { noticeText, onLangChange, onTitle, t } from "./i18n.js";
import { askRetryOptions } from "./options.js";
import { Estimate } from "./progress.js";
import { OPTION_CODES, errorLine, errorText, fillError, reveal, toast } from "./ui.js";

const FINAL = new Set(["completed", "failed", "cancelled"]);
const ACTIVE = new Set(["uploading", "queued", "processing"]);
const AUDIO_EXT = /\.(mp3|m4a|aac|ogg|oga|opus|flac|wav|wma|amr)$/i;
const VIDEO_EXT = /\.(mp4|m4v|mkv|webm|mov|avi|wmv|flv|mpg|mpeg|ts|3gp|ogv)$/i;
const TICK_MS = 250;

/** What a file's icon shows: audio, video, or (anything else) a plain file. */
export function mediaKind(name) {
  if (AUDIO_EXT.test(name)) return "audio";
  if (VIDEO_EXT.test(name)) return "video";
  return "file";
}

export class TaskList {
  constructor(listEl, { onOpen, onRemoved }) {
    this.listEl = listEl;
    this.emptyEl = document.getElementById("tasks-empty");
    this.loadErrorEl = document.getElementById("tasks-error");
    this.loadFailed = null; // the error that kept the list from loading
    this.noneMatchEl = document.getElementById("tasks-none-match");
    this.countEl = document.getElementById("task-count");
    this.filtersEl = document.getElementById("task-filters");
    this.nameFilter = document.getElementById("task-filter");
    this.statusFilter = document.getElementById("task-status");
    this.onOpen = onOpen;
    this.onRemoved = onRemoved;
    this.items = new Map(); // key (task id or upload id) -> item
    this.uploadSeq = 0;
    this.openId = null;
    onLangChange(() => {
      for (const item of this.items.values()) this.render(item);
      if (this.loadFailed) this.showLoadError();
      this.updateCount();
    });
    this.nameFilter.addEventListener("input", () => this.applyFilter());
    this.statusFilter.addEventListener("change", () => this.applyFilter());
    document.getElementById("tasks-retry").addEventListener("click", () => this.load());
    setInterval(() => this.tick(), TICK_MS);
    onTitle(() => this.updateTitle());
  }

  /** Read the task list; when that fails, the list says so and offers to try again. */
  async load() {
    let page;
    try {
      page = await request("/api/tasks?limit=200");
    } catch (err) {
      this.loadFailed = err;
      this.showLoadError();
      this.updateCount();
      return;
    }
    const retried = Boolean(this.loadFailed);
    this.loadFailed = null;
    this.loadErrorEl.hidden = true;
    // Newest first from the API; append in that order under any uploads in flight.
    for (const task of page.items) {
      const item = this.ensure(task.id, task, false);
      this.render(item);
      if (!FINAL.has(task.status)) this.watch(item);
    }
    this.updateCount();
    if (retried) this.focusFirst();
  }

  /** The keyboard on a card: its first button that shows (the name, or an action). */
  focusCard(item) {
    const button = item && !item.el.hidden && item.el.querySelector("button:not([hidden])");
    if (button) button.focus();
    return Boolean(button);
  }

  focusFirst() {
    const first = [...this.items.values()].find((i) => !i.el.hidden);
    if (!(first && this.focusCard(first))) document.getElementById("file-input").focus();
  }

  /** After the viewer closes: back on the task's Open button. */
  focusTask(id) {
    const item = this.items.get(id);
    const open = item && !item.el.hidden && item.el.querySelector(".task-actions button[data-action=open]");
    if (open && !open.hidden) open.focus();
  }

  showLoadError() {
    document.getElementById("tasks-error-text").textContent =
      `${t("tasks.loadFailed")} ${errorText(this.loadFailed)}`;
    this.loadErrorEl.hidden = false;
  }

  get(id) {
    const item = this.items.get(id);
    return item && item.task ? item.task : null;
  }

  ensure(key, task, atTop) {
    let item = this.items.get(key);
    if (item) {
      if (task) item.task = { ...item.task, ...task };
      return item;
    }
    item = {
      key,
      task,
      el: this.build(),
      socket: null,
      backoff: 1000,
      timer: null,
      estimate: new Estimate(),
    };
    if (task) item.estimate.report(task.progress || 0, task.eta_seconds);
    this.items.set(key, item);
    if (atTop) this.listEl.prepend(item.el);
    else this.listEl.append(item.el);
    this.updateCount();
    return item;
  }

  build() {
    const el = document.createElement("li");
    el.className = "task";
    el.innerHTML = `
      <div class="task-head">
        <span class="task-icon" aria-hidden="true"></span>
        <div class="task-title">
          <button type="button" class="task-name task-name-button" data-action="open"></button>
          <span class="task-name task-name-text"></span>
          <span class="task-meta"></span>
          <span class="task-warning" hidden></span>
        </div>
        <span class="pill"></span>
      </div>
      <div class="progress-block">
        <div class="progress-label"><span class="progress-stage"></span><span class="progress-value"></span></div>
        <div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100"><div class="progress-fill"></div></div>
        <div class="progress-detail"></div>
      </div>
      <div class="task-error" role="alert"></div>
      <div class="task-actions">
        <button type="button" class="btn btn-primary btn-small" data-action="open"></button>
        <button type="button" class="btn btn-secondary btn-small" data-action="retry"></button>
        <button type="button" class="btn btn-ghost btn-small" data-action="cancel"></button>
        <button type="button" class="btn btn-ghost btn-small btn-danger" data-action="delete"></button>
        <button type="button" class="btn btn-ghost btn-small" data-action="dismiss"></button>
      </div>`;
    el.addEventListener("click", (e) => {
      const button = e.target.closest("button[data-action]");
      if (!button) return;
      const item = [...this.items.values()].find((i) => i.el === el);
      if (item) this.act(item, button.dataset.action, button);
    });
    return el;
  }

  status(item) {
    const up = item.upload;
    return up && !item.task ? up.state : (item.task || {}).status;
  }

  /** Put one item's state on screen, reusing its elements so focus is never lost. */
  render(item) {
    const { el } = item;
    const task = item.task || {};
    const up = item.upload;
    const status = this.status(item);
    const name = task.filename || (up && up.file.name) || "";
    el.dataset.status = status;
    if (task.id) el.dataset.taskId = task.id;
    el.querySelector(".task-icon").dataset.kind = mediaKind(name);
    const openable = status === "completed";
    const nameButton = el.querySelector(".task-name-button");
    const nameText = el.querySelector(".task-name-text");
    nameButton.hidden = !openable;
    nameText.hidden = openable;
    nameButton.textContent = nameText.textContent = name;
    nameButton.title = nameText.title = name;
    nameButton.setAttribute("aria-label", t("task.openName", { name }));
    const isOpen = Boolean(task.id) && task.id === this.openId;
    el.classList.toggle("is-open", isOpen);
    if (isOpen) el.setAttribute("aria-current", "true");
    else el.removeAttribute("aria-current");

    const meta = [];
    const options = task.options || {};
    const clip = options.clip;
    if (clip && (clip.start || clip.end != null)) {
      // Only a part of the file: where it starts and ends, in the file's own time.
      meta.push(`${clock(clip.start || 0)}–${clip.end != null ? clock(clip.end) : "…"}`);
    } else if (task.duration) {
      meta.push(clock(task.duration));
    }
    if (task.language) {
      const spoken = task.language.toUpperCase();
      meta.push(options.translate && spoken !== "EN" ? `${spoken} → EN` : spoken);
    }
    if (task.created_at) meta.push(dateTime(task.created_at));
    if (!task.id && up) meta.push(bytes(up.file.size));
    if (task.attempts > 1) meta.push(t("task.attempts", { n: task.attempts }));
    el.querySelector(".task-meta").textContent = meta.join(" · ");

    // A finished transcript that has something to warn of says so before it is opened.
    const warnings = (status === "completed" && task.warnings) || [];
    const warning = el.querySelector(".task-warning");
    warning.hidden = warnings.length === 0;
    warning.textContent = warnings.length ? t("task.warnings", { n: warnings.length }) : "";
    warning.title = warnings.map(noticeText).join("\n");

    const pill = el.querySelector(".pill");
    pill.textContent = isOpen ? t("task.open.current") : t(`status.${status}`);
    pill.className = `pill pill-${isOpen ? "open" : status}`;

    this.renderProgress(item);

    const errorEl = el.querySelector(".task-error");
    if (status === "rejected") fillError(errorEl, up.code, up.error);
    else if (status === "failed") fillError(errorEl, task.error_code, task.error);
    else errorEl.replaceChildren();
    errorEl.hidden = !(status === "rejected" || status === "failed");

    const show = {
      open: openable,
      retry: status === "failed" || status === "cancelled",
      cancel: ACTIVE.has(status),
      delete: Boolean(task.id) && FINAL.has(status),
      dismiss: status === "rejected",
    };
    for (const button of el.querySelectorAll(".task-actions button[data-action]")) {
      const action = button.dataset.action;
      button.hidden = !show[action];
      button.textContent = t(`task.${action}`);
      button.setAttribute("aria-label", `${t(`task.${action}`)}: ${name}`);
    }
    this.filterOne(item);
  }

  /** The bar, its numbers and the time left: drawn on every report and between them. */
  renderProgress(item, now = performance.now()) {
    const { el } = item;
    const task = item.task || {};
    const up = item.upload;
    const status = this.status(item);
    const block = el.querySelector(".progress-block");
    const bar = el.querySelector(".progress");
    let fraction = null;
    let stage = "";
    const details = [];
    if (status === "uploading") {
      fraction = up.total ? up.loaded / up.total : 0;
      stage = t("stage.upload");
      details.push(t("progress.bytes", { done: bytes(up.loaded), total: bytes(up.total) }));
      bar.setAttribute("aria-label", t("progress.upload"));
    } else if (status === "queued" || status === "processing") {
      fraction = status === "processing" ? item.estimate.progress(now) : task.progress || 0;
      stage =
        status === "queued"
          ? t("stage.waiting")
          : task.stage
            ? t(`stage.${task.stage}`)
            : t("stage.starting");
      if (task.queue_position) details.push(t("progress.queue", { n: task.queue_position }));
      const left = status === "processing" ? item.estimate.secondsLeft(now) : null;
      if (left !== null) {
        details.push(left >= 1 ? t("progress.eta", { eta: clock(left) }) : t("progress.finishing"));
      }
      if (item.reconnecting) details.push(t("progress.reconnecting"));
      bar.setAttribute("aria-label", t("progress.task"));
    } else if (status === "completed" && item.justFinished) {
      fraction = 1;
      stage = t("stage.done");
      bar.setAttribute("aria-label", t("progress.task"));
    }
    block.hidden = fraction === null;
    if (fraction === null) return;
    const pct = percent(fraction);
    el.querySelector(".progress-fill").style.width = pct;
    el.querySelector(".progress-value").textContent = pct;
    bar.setAttribute("aria-valuenow", String(Math.round(fraction * 100)));
    el.querySelector(".progress-stage").textContent = stage;
    el.querySelector(".progress-detail").textContent = details.join(" · ");
    block.dataset.kind = status === "uploading" ? "upload" : "task";
    // What the server last said, apart from what the bar shows between its reports.
    block.dataset.reported = String(Math.round((task.progress || 0) * 100));
  }

  tick() {
    const now = performance.now();
    for (const item of this.items.values()) {
      if (this.status(item) === "processing") this.renderProgress(item, now);
    }
    this.updateTitle();
  }

  /** The running tasks' progress in the tab's title, so it shows from another tab. */
  updateTitle() {
    const running = [...this.items.values()].filter((i) => this.status(i) === "processing");
    const base = t("app.title");
    if (!running.length) {
      document.title = base;
      return;
    }
    const shown = running.map((i) => i.estimate.progress());
    const pct = percent(shown.reduce((a, b) => a + b, 0) / shown.length);
    document.title = running.length > 1 ? `${pct} (${running.length}) · ${base}` : `${pct} · ${base}`;
  }

  setOpen(id) {
    this.openId = id;
    for (const item of this.items.values()) this.render(item);
  }

  applyFilter() {
    for (const item of this.items.values()) this.filterOne(item);
    this.updateCount();
  }

  filterOne(item) {
    const query = this.nameFilter.value.trim().toLocaleLowerCase();
    const wanted = this.statusFilter.value;
    const status = this.status(item);
    const name = ((item.task && item.task.filename) || (item.upload && item.upload.file.name) || "")
      .toLocaleLowerCase();
    let match = !query || name.includes(query);
    if (wanted === "active") match &&= ACTIVE.has(status);
    else if (wanted === "failed") match &&= status === "failed" || status === "rejected";
    else if (wanted) match &&= status === wanted;
    item.el.hidden = !match;
  }

  updateCount() {
    const n = this.items.size;
    const shown = [...this.items.values()].filter((i) => !i.el.hidden).length;
    this.emptyEl.hidden = n > 0 || Boolean(this.loadFailed);
    this.noneMatchEl.hidden = n === 0 || shown > 0;
    this.filtersEl.hidden = n < 2 && !this.nameFilter.value && !this.statusFilter.value;
    this.countEl.textContent = !n ? "" : shown === n ? String(n) : t("tasks.shown", { n: shown, total: n });
  }

  remove(item) {
    this.stopWatching(item);
    item.el.remove();
    this.items.delete(item.key);
    this.updateCount();
    if (item.task && item.task.id) this.onRemoved(item.task.id);
  }

  /** Upload one file (or, with `file` null, send `fields.url`), then follow its task. */
  upload(file, fields) {
    const key = `upload-${++this.uploadSeq}`;
    // A filter that would hide the new card is lifted: the reader must see it arrive.
    if (this.nameFilter.value || this.statusFilter.value) {
      this.nameFilter.value = "";
      this.statusFilter.value = "";
      this.applyFilter();
    }
    const item = this.ensure(key, null, true);
    const shown = file || { name: linkName(fields.url), size: 0 };
    item.upload = { file: shown, state: "uploading", loaded: 0, total: shown.size, error: "" };
    this.render(item);
    requestAnimationFrame(() => reveal(item.el));
    const job = uploadFile(file, fields, (loaded, total) => {
      item.upload.loaded = loaded;
      item.upload.total = total || shown.size;
      this.renderProgress(item);
    });
    item.upload.abort = job.abort;
    job.promise.then(
      (task) => {
        // The upload's entry becomes the task's: same element, now keyed by the task id.
        this.items.delete(key);
        item.key = task.id;
        item.task = task;
        item.estimate.report(task.progress || 0, task.eta_seconds);
        this.items.set(task.id, item);
        this.render(item);
        this.watch(item);
      },
      (err) => {
        if (err instanceof ApiError && err.code === "aborted") {
          this.remove(item);
          toast(t("upload.cancelled", { name: shown.name }));
          return;
        }
        item.upload.state = "rejected";
        item.upload.code = err instanceof ApiError ? err.code : "";
        item.upload.error = err instanceof ApiError && err.message ? err.message : errorText(err);
        this.render(item);
        const line = errorLine(item.upload.code, item.upload.error);
        toast(`${shown.name}: ${line || errorText(err)}`, "error");
        // A refused option: the options stay open to be put right.
        if (OPTION_CODES.has(item.upload.code)) document.getElementById("options").open = true;
      },
    );
  }

  watch(item) {
    this.stopWatching(item);
    const id = item.task.id;
    let ended = false;
    const socket = new WebSocket(wsUrl(`/ws/tasks/${encodeURIComponent(id)}`));
    item.socket = socket;
    socket.onmessage = (msg) => {
      // The server said something: it is up. (An accepted socket that is closed at once,
      // as while the database is down, keeps backing off.)
      item.backoff = 1000;
      let data;
      try {
        data = JSON.parse(msg.data);
      } catch {
        return;
      }
      if (data.event === "error" || data.event === "deleted") {
        ended = true;
        // Deleted, here or elsewhere: its card goes.
        const gone = data.event === "deleted" || (data.error && data.error.code === "not_found");
        if (gone) this.remove(item);
        return;
      }
      if (!data.task) return;
      const was = item.task.status;
      item.reconnecting = false;
      item.task = { ...item.task, ...data.task };
      item.estimate.report(item.task.progress || 0, item.task.eta_seconds);
      if (FINAL.has(data.event)) {
        ended = true;
        if (data.event === "completed" && was !== "completed") {
          item.justFinished = true;
          if (was) toast(t("task.completedToast", { name: item.task.filename }));
        }
      }
      this.render(item);
      this.updateTitle();
    };
    socket.onclose = async (e) => {
      if (item.socket !== socket) return;
      item.socket = null;
      if (ended || !this.items.has(item.key)) return;
      if (e.code === 4404) {
        this.remove(item);
        return;
      }
      if (e.code === 4401) {
        if (await askForKey()) this.watch(item);
        return;
      }
      item.reconnecting = true;
      this.render(item);
      const delay = item.backoff;
      item.backoff = Math.min(item.backoff * 2, 30_000);
      item.timer = setTimeout(() => this.resume(item), delay + Math.random() * 250);
    };
  }

  /** After a dropped socket: re-read the task, then follow it again if it is still running. */
  async resume(item) {
    item.timer = null;
    if (!this.items.has(item.key)) return;
    try {
      item.task = await request(`/api/tasks/${encodeURIComponent(item.task.id)}`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        this.remove(item);
        return;
      }
      // Still unreachable: the next WebSocket attempt backs off further.
    }
    if (FINAL.has(item.task.status)) {
      item.reconnecting = false;
      this.render(item);
      return;
    }
    this.watch(item);
  }

  stopWatching(item) {
    if (item.timer) clearTimeout(item.timer);
    item.timer = null;
    const socket = item.socket;
    item.socket = null;
    if (socket) socket.close();
  }

  async act(item, action, button) {
    const task = item.task;
    const name = task ? task.filename : item.upload && item.upload.file.name;
    const path = task ? `/api/tasks/${encodeURIComponent(task.id)}` : "";
    try {
      if (action === "open") {
        if (task && task.status === "completed") this.onOpen(task);
      } else if (action === "dismiss") {
        this.removeAndMoveOn(item);
      } else if (action === "cancel" && !task) {
        item.upload.abort();
      } else if (action === "cancel") {
        button.disabled = true;
        // Cancelling keeps the media, so that the task can be retried.
        const after = await request(`${path}/cancel`, { method: "POST" });
        this.stopWatching(item);
        if (after) item.task = after;
        this.render(item);
        toast(t("task.cancelled", { name }));
      } else if (action === "delete") {
        if (!confirm(t("task.confirmDelete", { name }))) return;
        button.disabled = true;
        await request(path, { method: "DELETE" });
        this.removeAndMoveOn(item);
        toast(t("task.deleted", { name }));
      } else if (action === "retry") {
        const change = await askRetryOptions(task);
        if (!change) return;
        button.disabled = true;
        item.task = await request(`${path}/retry`, { method: "POST", body: change });
        item.justFinished = false;
        item.estimate = new Estimate();
        item.estimate.report(0, item.task.eta_seconds);
        this.render(item);
        this.watch(item);
        toast(t("task.retried", { name }));
      }
    } catch (err) {
      toast(errorText(err), "error");
    } finally {
      button.disabled = false;
      // The button pressed went away (Cancel became Retry, and back): the card's next one
      // takes the keyboard.
      if (button.hidden && item.el.isConnected && document.activeElement === document.body) {
        this.focusCard(item);
      }
    }
  }

  /** Remove a card the reader took away; the keyboard goes to the next card (or the one
   * before, or the file picker). */
  removeAndMoveOn(item) {
    const cards = [...this.items.values()].filter((i) => i === item || !i.el.hidden);
    const at = cards.indexOf(item);
    const next = cards[at + 1] || cards[at - 1];
    this.remove(item);
    if (!(next && this.focusCard(next))) document.getElementById("file-input").focus();
  }
}

/** The name a link's task will get: the last part of its path, as the server names it. */
function linkName(url) {
  try {
    const part = new URL(url).pathname.split("/").pop();
    return decodeURIComponent(part || "") || "download";
  } catch {
    return url;
  }
}
