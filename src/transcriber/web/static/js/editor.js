// Correcting a transcript: the inline form on a segment, and saving changes to the server
// one at a time, each on the revision the page last read, so that a change made
// meanwhile elsewhere is never overwritten silently (the server answers 409 instead).
import { ApiError, request } from "./api.js";
import { clock } from "./format.js";
import { t } from "./i18n.js";
import { errorText, toast } from "./ui.js";

export class Editor {
  /** `viewer` has task, view, speakers, name(label), applyView(view), reload(). */
  constructor(viewer) {
    this.viewer = viewer;
    this.queue = Promise.resolve();
    this.pending = 0; // saves sent or waiting their turn
  }

  path(suffix = "") {
    return `/api/tasks/${encodeURIComponent(this.viewer.task.id)}/transcript${suffix}`;
  }

  /** Send a change (`segments`, `speaker_names`) after the ones before it. `draft`, the
   * form's content behind a segment's change, is put back in a new form on a conflict. */
  save(change, { done = t("editor.saved"), method = "PATCH", suffix = "", draft = null } = {}) {
    const task = this.viewer.task;
    const run = async () => {
      if (this.viewer.task !== task || !this.viewer.view) return false;
      try {
        const body = { ...change, revision: this.viewer.view.revision };
        const view = await request(this.path(suffix), { method, body });
        if (this.viewer.task !== task) return false;
        this.viewer.applyView(view);
        if (done) toast(done);
        return true;
      } catch (err) {
        if (this.viewer.task !== task) return false;
        if (err instanceof ApiError && err.code === "edit_conflict") {
          toast(draft ? t("editor.conflictKept") : t("error.edit_conflict"), "error");
          await this.viewer.reload();
          // The reader's text comes back in a form on the reloaded segment, to check and save.
          if (draft && this.viewer.task === task) this.restore([draft]);
        } else {
          toast(errorText(err), "error");
        }
        return false;
      }
    };
    this.pending += 1;
    const result = this.queue.then(run).finally(() => {
      this.pending -= 1;
    });
    this.queue = result.catch(() => false);
    return result;
  }

  /** The open forms not being saved: what they hold, to put back after a re-render. */
  drafts() {
    return [...this.viewer.segmentsEl.querySelectorAll(".seg-form:not([aria-busy])")].map((form) => {
      const area = form.querySelector("textarea");
      const select = form.querySelector("select");
      const active = document.activeElement;
      return {
        id: form.closest(".segment").dataset.id,
        text: area.value,
        speaker: select ? select.value : null,
        focus: active === area ? "text" : select && active === select ? "speaker" : null,
        selection: [area.selectionStart, area.selectionEnd],
      };
    });
  }

  /** Open the forms of `drafts` again on their segments (those still there). */
  restore(drafts) {
    const viewer = this.viewer;
    for (const draft of drafts) {
      const li = viewer.segmentsEl.querySelector(`.segment[data-id="${CSS.escape(String(draft.id))}"]`);
      const seg = li && viewer.doc.segments[Number(li.dataset.index)];
      if (seg) this.open(li, seg, draft);
    }
  }

  /** Whether an open form holds a text or speaker that is not saved. */
  changed() {
    return [...this.viewer.segmentsEl.querySelectorAll(".seg-form")].some((form) => {
      const select = form.querySelector("select");
      return (
        form.querySelector("textarea").value.trim() !== form.dataset.text.trim() ||
        Boolean(select && select.value !== form.dataset.speaker)
      );
    });
  }

  undo() {
    return this.save({}, { done: t("editor.undone"), method: "POST", suffix: "/undo" });
  }

  /** Turn segment `li` into a form: its text, its speaker, save, cancel, restore; with
   * `draft` (from drafts()), holding what was typed before and focused as it was. */
  open(li, seg, draft = null) {
    if (li.querySelector(".seg-form")) return;
    const viewer = this.viewer;
    const textEl = li.querySelector(".seg-text");
    const form = document.createElement("form");
    form.className = "seg-form";
    const id = `seg-edit-${seg.id}`;
    const label = document.createElement("label");
    label.className = "visually-hidden";
    label.htmlFor = id;
    label.textContent = t("editor.text", { time: clock(seg.start) });
    const area = document.createElement("textarea");
    area.id = id;
    area.value = seg.text;
    area.rows = Math.min(6, Math.max(2, Math.ceil(seg.text.length / 70)));
    form.append(label, area);

    let select = null;
    if (viewer.speakers.length) {
      const row = document.createElement("div");
      row.className = "seg-form-speaker";
      const sl = document.createElement("label");
      sl.htmlFor = `${id}-speaker`;
      sl.textContent = t("editor.speaker");
      select = document.createElement("select");
      select.id = `${id}-speaker`;
      for (const labelName of viewer.speakers) {
        select.append(new Option(viewer.name(labelName), labelName));
      }
      const fresh = newLabel(viewer.speakers);
      if (fresh) select.append(new Option(t("editor.newSpeaker", { label: fresh }), fresh));
      select.value = seg.speaker || viewer.speakers[0];
      row.append(sl, select);
      form.append(row);
    }
    form.dataset.text = seg.text;
    form.dataset.speaker = select ? select.value : "";

    const actions = document.createElement("div");
    actions.className = "seg-form-actions";
    const button = (text, kind, type = "button") => {
      const b = document.createElement("button");
      b.type = type;
      b.className = `btn btn-small ${kind}`;
      b.textContent = text;
      return b;
    };
    const save = button(t("editor.save"), "btn-primary", "submit");
    const cancel = button(t("editor.cancel"), "btn-ghost");
    actions.append(save, cancel);
    if (viewer.view.edited.includes(seg.id)) {
      const revert = button(t("editor.revert"), "btn-ghost");
      revert.addEventListener("click", () => finish(this.save({ segments: [{ id: seg.id, revert: true }] })));
      actions.append(revert);
    }
    form.append(actions);

    const close = () => {
      form.remove();
      textEl.hidden = false;
      li.classList.remove("editing");
      const again = viewer.segmentsEl.querySelector(`.segment[data-id="${seg.id}"] .seg-edit`);
      if (again) again.focus();
    };
    const finish = async (saving) => {
      for (const b of form.querySelectorAll("button, textarea, select")) b.disabled = true;
      form.setAttribute("aria-busy", "true");
      const ok = await saving;
      if (!ok && li.isConnected) {
        for (const b of form.querySelectorAll("button, textarea, select")) b.disabled = false;
        form.removeAttribute("aria-busy");
        return;
      }
      if (li.isConnected) close();
    };
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const change = { id: seg.id };
      if (area.value.trim() !== seg.text) change.text = area.value;
      if (select && select.value !== seg.speaker) change.speaker = select.value;
      if (!("text" in change) && !("speaker" in change)) {
        close();
        return;
      }
      if ("text" in change) toast(t("editor.saving"));
      const draft = { id: seg.id, text: area.value, speaker: select ? select.value : null, focus: "text" };
      finish(this.save({ segments: [change] }, { draft }));
    });
    cancel.addEventListener("click", close);
    form.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.preventDefault();
        e.stopPropagation();
        close();
      } else if (e.key === "Enter" && !e.shiftKey && e.target === area) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
    // Clicks inside the form must not seek the player.
    form.addEventListener("click", (e) => e.stopPropagation());
    form.addEventListener("dblclick", (e) => e.stopPropagation());
    textEl.hidden = true;
    li.classList.add("editing");
    textEl.after(form);
    if (draft) {
      area.value = draft.text;
      if (select && draft.speaker && [...select.options].some((o) => o.value === draft.speaker)) {
        select.value = draft.speaker;
      }
    }
    if (!draft || draft.focus === "text") {
      area.focus();
      const [start, end] = (draft && draft.selection) || [area.value.length, area.value.length];
      area.setSelectionRange(start, end);
    } else if (draft.focus === "speaker" && select) select.focus();
  }
}

/** A speaker label not taken yet: the next letter after A, B, …; null past Z. */
function newLabel(labels) {
  for (let code = 65; code <= 90; code += 1) {
    const label = String.fromCharCode(code);
    if (!labels.includes(label)) return label;
  }
  return null;
}
