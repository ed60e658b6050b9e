// Light or dark: the system's choice until the reader flips the switch, which is kept.
const KEY = "transcriber.theme";
const dark = window.matchMedia("(prefers-color-scheme: dark)");

export const isDark = () => {
  const chosen = document.documentElement.dataset.theme;
  return chosen ? chosen === "dark" : dark.matches;
};

const listeners = new Set();

/** `fn()` runs when the theme changes (canvas drawings read the colours again). */
export function onThemeChange(fn) {
  listeners.add(fn);
}

function show(button) {
  button.setAttribute("aria-pressed", String(isDark()));
  for (const fn of listeners) fn();
}

export function setupTheme() {
  const button = document.getElementById("theme-button");
  button.addEventListener("click", () => {
    const next = isDark() ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    try {
      localStorage.setItem(KEY, next);
    } catch {
      // private mode: the choice lasts for this page only
    }
    show(button);
  });
  dark.addEventListener("change", () => show(button));
  show(button);
}
