// Message catalogues: the page ships with its language inline; the other is fetched on switch.
let lang = document.documentElement.lang || "en";
let messages = JSON.parse(document.getElementById("i18n-catalogue").textContent);
const listeners = new Set();
const titleListeners = new Set();

/** `fn()` sets the page's title; it runs again whenever the language changes. */
export function onTitle(fn) {
  titleListeners.add(fn);
  fn();
}

/** Whether the catalogue words `key` (error codes the page has its own sentence for). */
export const has = (key) => key in messages;

export function t(key, vars) {
  let text = messages[key] ?? key;
  if (vars) text = text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
  return text;
}

export const currentLang = () => lang;

/** A transcript's warning in the page's language; the service's own (English) sentence
 * for a code this page does not know yet, or a notice that lacks a value its sentence
 * names (one stored before that value was added). */
export function noticeText(notice) {
  const key = `notice.${notice.code}`;
  const numbers = new Intl.NumberFormat(lang);  // 4.6 in English, 4,6 in Russian
  const values = Object.fromEntries(
    Object.entries(notice.values || {}).map(([k, v]) => [k, typeof v === "number" ? numbers.format(v) : v]),
  );
  const worded = t(key, values);
  return worded === key || /\{\w+\}/.test(worded) ? notice.message : worded;
}

export function applyStatic(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  for (const el of root.querySelectorAll("[data-i18n-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nLabel));
    if (el.hasAttribute("title")) el.title = t(el.dataset.i18nLabel);
  }
  for (const fn of titleListeners) fn();
}

export function onLangChange(fn) {
  listeners.add(fn);
}

export async function setLang(next) {
  if (next === lang) return;
  const res = await fetch(`/static/i18n/${encodeURIComponent(next)}.json`);
  if (!res.ok) throw new Error(`no messages for ${next}`);
  messages = await res.json();
  lang = next;
  document.documentElement.lang = next;
  // The server reads this cookie, so a reload keeps the choice.
  document.cookie = `lang=${next}; path=/; max-age=31536000; SameSite=Lax`;
  const url = new URL(location.href);
  if (url.searchParams.has("lang")) {
    url.searchParams.delete("lang");
    history.replaceState(null, "", url);
  }
  applyStatic();
  for (const fn of listeners) fn(lang);
}
