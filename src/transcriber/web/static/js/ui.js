// Small shared UI pieces: the toast, and errors worded for people in their language.
import { ApiError } from "./api.js";
import { has, t } from "./i18n.js";

let toastTimer = null;

export function toast(message, kind = "info") {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.dataset.kind = kind;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    el.hidden = true;
  }, kind === "error" ? 7000 : 4000);
}

// Codes whose server message is for the operator (a setting, a command line, a log):
// the page shows its own sentence only.
const OPERATOR_CODES = new Set([
  "internal_error",
  "model_unavailable",
  "model_not_found",
  "unavailable",
  "missing_extra",
  "private_address",
  "unauthorized",
]);

/** The page's own sentence for an error code, or null when it has none. */
export function codeText(code) {
  return code && has(`error.${code}`) ? t(`error.${code}`) : null;
}

/** What the server said, when it helps the reader (which option, which link), else "". */
export function codeDetail(code, message) {
  if (!message || OPERATOR_CODES.has(code)) return "";
  return message;
}

export function errorText(err) {
  if (err instanceof ApiError) {
    if (err.code === "network") return t("error.network");
    const worded = codeText(err.code);
    if (worded) return worded;
    if (err.status === 401) return err.message || t("error.needKey");
    if (err.message) return err.message;
  }
  return t("error.generic", { message: err && err.message ? err.message : String(err) });
}

// Codes whose server message names what to change (which option, and why): the reader
// needs it to fix the request, so it is shown, not folded under "Details".
export const OPTION_CODES = new Set(["invalid_option", "invalid_request"]);

/** The error's sentence, and for an option the server's reason after it. */
export function errorLine(code, message) {
  const worded = codeText(code);
  if (!worded) return message || "";
  return OPTION_CODES.has(code) && message ? `${worded} ${message}` : worded;
}

/** The error's sentence, then the server's detail on the reader's request. */
export function fillError(el, code, message) {
  const worded = codeText(code);
  const detail = worded ? codeDetail(code, message) : "";
  el.replaceChildren(worded || message || "");
  if (detail && OPTION_CODES.has(code)) {
    const reason = document.createElement("span");
    reason.className = "error-reason";
    reason.textContent = ` ${detail}`;
    el.append(reason);
  } else if (detail && detail !== worded) {
    const more = document.createElement("details");
    more.className = "error-detail";
    const summary = document.createElement("summary");
    summary.textContent = t("task.details");
    const text = document.createElement("span");
    text.textContent = detail;
    more.append(summary, text);
    el.append(more);
  }
}

export const prefersReducedMotion = () =>
  window.matchMedia("(prefers-reduced-motion: reduce)").matches;

/** Scroll `el` into view unless it is in view already, below the sticky bar: all of it
 * (`nearest`), or its top in the upper third of the window (`start`, for tall things). */
export function reveal(el, block = "nearest") {
  const r = el.getBoundingClientRect();
  const bar = document.querySelector(".topbar");
  const top = bar ? bar.getBoundingClientRect().bottom : 0;
  const shown =
    block === "start"
      ? r.top >= top - 1 && r.top <= window.innerHeight / 3
      : r.top >= top - 1 && r.bottom <= window.innerHeight;
  if (shown) return;
  el.scrollIntoView({ block, behavior: prefersReducedMotion() ? "auto" : "smooth" });
}
