// Keyboard shortcuts for the player and the editor, and the overlay that lists them.
const TYPING = "input, textarea, select, [contenteditable='true'], dialog[open]";

/** `player` has togglePlay(), skip(seconds), editCurrent() and focusSearch(). */
export function setupShortcuts(player) {
  const help = document.getElementById("help-dialog");
  const open = () => {
    if (!help.open) help.showModal();
  };
  document.getElementById("help-button").addEventListener("click", open);
  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
    const target = e.target instanceof Element ? e.target : null;
    if (target && target.closest(TYPING)) return;
    // On a button or link, Space and Enter press it; the arrows keep their meaning on
    // the timeline slider, which handles them itself.
    const onControl = target && target.closest("button, a, summary, video, audio, [role='slider']");
    const key = e.key;
    let done = true;
    if (key === "?") open();
    else if ((key === " " && !onControl) || key === "k" || key === "K") player.togglePlay();
    else if ((key === "ArrowLeft" && !onControl) || key === "j" || key === "J") player.skip(-5);
    else if ((key === "ArrowRight" && !onControl) || key === "l" || key === "L") player.skip(5);
    else if (key === "/") player.focusSearch();
    else if (key === "e" || key === "E") player.editCurrent();
    else done = false;
    if (done) e.preventDefault();
  });
}
