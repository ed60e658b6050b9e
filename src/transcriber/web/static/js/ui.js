// Small shared UI pieces: the toast and error messages for people.
import { ApiError } from "./api.js";
import { t } from "./i18n.js";

let toastTimer = null;

export function toast(message, kind = "info") {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.dataset.kind = kind;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    el.hidden = true;
  }, 4000);
}

export function errorText(err) {
  if (err instanceof ApiError) {
    if (err.code === "network") return t("error.network");
    if (err.status === 401) return err.message || t("error.needKey");
    if (err.message) return err.message;
  }
  return t("error.generic", { message: err && err.message ? err.message : String(err) });
}
