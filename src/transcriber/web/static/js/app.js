// Entry point: wires the upload form, the task list, the viewer, the language, the theme,
// the keyboard and the key.
import { apiKey, setApiKey, setKeyPrompt } from "./api.js";
import { applyStatic, currentLang, setLang, t } from "./i18n.js";
import { LivePanel, setupTabs } from "./live.js";
import { foldOptions, loadModels, readOptions, setupOptions } from "./options.js";
import { setupShortcuts } from "./shortcuts.js";
import { TaskList } from "./tasks.js";
import { setupTheme } from "./theme.js";
import { errorText, toast } from "./ui.js";
import { Viewer } from "./viewer.js";

const $ = (id) => document.getElementById(id);

function setupKeyDialog() {
  const dialog = $("key-dialog");
  const input = $("key-input");
  const error = $("key-error");
  const button = $("key-button");
  button.hidden = !apiKey();
  const prompt = (hadKey) =>
    new Promise((resolve) => {
      input.value = "";
      error.hidden = !hadKey;
      error.textContent = hadKey ? t("key.wrong") : "";
      dialog.returnValue = "";
      dialog.addEventListener(
        "close",
        () => {
          const key = input.value.trim();
          // Once asked, the key can be given again from the bar, the prompt dismissed or not.
          button.hidden = false;
          if (dialog.returnValue === "save" && key) {
            setApiKey(key);
            resolve(key);
          } else resolve(null);
        },
        { once: true },
      );
      dialog.showModal();
      input.focus();
    });
  setKeyPrompt(prompt);
  button.addEventListener("click", async () => {
    if (await prompt(false)) location.reload();
  });
}

function setupUpload(tasks) {
  const zone = $("dropzone");
  const input = $("file-input");
  const send = (files) => {
    const fields = readOptions();
    for (const file of files) tasks.upload(file, fields);
    foldOptions();
  };
  input.addEventListener("change", () => {
    send([...input.files]);
    input.value = "";
  });
  const link = $("url-input");
  const sendLink = () => {
    const url = link.value.trim();
    if (!url) {
      toast(t("upload.linkEmpty"), "error");
      link.focus();
      return;
    }
    if (!/^https?:\/\/\S+$/i.test(url)) {
      toast(t("upload.linkInvalid"), "error");
      link.focus();
      return;
    }
    tasks.upload(null, { ...readOptions(), url });
    foldOptions();
    link.value = "";
  };
  $("url-button").addEventListener("click", sendLink);
  link.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      sendLink();
    }
  });
  let depth = 0;
  zone.addEventListener("dragenter", (e) => {
    e.preventDefault();
    depth += 1;
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
  });
  zone.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) zone.classList.remove("dragging");
  });
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    depth = 0;
    zone.classList.remove("dragging");
    if (e.dataTransfer.files.length) send([...e.dataTransfer.files]);
    else toast(t("upload.dropNothing"), "error");
  });
  // A file dropped next to the zone would otherwise replace the page: it is taken too.
  // Anything else (a link into the URL field, text into a correction) drops as usual.
  const hasFiles = (e) => Boolean(e.dataTransfer) && [...e.dataTransfer.types].includes("Files");
  window.addEventListener("dragover", (e) => {
    if (hasFiles(e)) e.preventDefault();
  });
  window.addEventListener("drop", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    if (e.target instanceof Element && e.target.closest("#dropzone")) return;
    if (e.dataTransfer && e.dataTransfer.files.length) send([...e.dataTransfer.files]);
  });
}

function setupLanguage() {
  const select = $("ui-lang");
  select.value = currentLang();
  select.addEventListener("change", async () => {
    try {
      await setLang(select.value);
    } catch (err) {
      toast(errorText(err), "error");
      select.value = currentLang();
    }
  });
}

async function main() {
  applyStatic();
  setupTheme();
  setupKeyDialog();
  setupLanguage();
  setupOptions();
  let tasks = null;
  const viewer = new Viewer({
    onOpened: (id) => tasks && tasks.setOpen(id),
    onClosed: (id) => tasks && tasks.focusTask(id),
  });
  tasks = new TaskList($("task-list"), {
    onOpen: (task) => viewer.open(task),
    onRemoved: (id) => {
      if (viewer.openId === id) viewer.close();
    },
  });
  setupUpload(tasks);
  setupTabs();
  new LivePanel({
    onSaved: (task) => {
      tasks.render(tasks.ensure(task.id, task, true));
      viewer.open(task);
    },
  });
  setupShortcuts(viewer);
  try {
    await Promise.all([tasks.load(), loadModels()]);
  } catch (err) {
    toast(errorText(err), "error");
  }
  document.body.dataset.ready = "true";
}

main();
