// Entry point: wires the upload form, the task list, the viewer, the language and the key.
import { apiKey, setApiKey, setKeyPrompt } from "./api.js";
import { applyStatic, currentLang, setLang, t } from "./i18n.js";
import { LivePanel, setupTabs } from "./live.js";
import { TaskList } from "./tasks.js";
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
          if (dialog.returnValue === "save" && key) {
            setApiKey(key);
            button.hidden = false;
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

function readOptions() {
  const language = $("opt-language").value;
  const model = $("opt-model").value.trim();
  const diarize = $("opt-diarize").checked;
  const speakers = $("opt-speakers").value;
  const fields = { language };
  if (model) fields.model = model;
  if (diarize) {
    fields.diarize = "true";
    if (speakers) fields.speakers = speakers;
  }
  if ($("opt-split").checked) fields.channels = "split";
  if ($("opt-translate").checked) fields.task = "translate";
  const prompt = $("opt-prompt").value.trim();
  if (prompt) fields.prompt = prompt;
  for (const edge of ["start", "end"]) {
    const at = $(`opt-${edge}`).value.trim();  // seconds or [h:]mm:ss, read by the server
    if (at) fields[edge] = at;
  }
  return fields;
}

function setupUpload(tasks) {
  const zone = $("dropzone");
  const input = $("file-input");
  const send = (files) => {
    const fields = readOptions();
    for (const file of files) tasks.upload(file, fields);
  };
  input.addEventListener("change", () => {
    send([...input.files]);
    input.value = "";
  });
  const link = $("url-input");
  const sendLink = () => {
    const url = link.value.trim();
    if (!url) return;
    tasks.upload(null, { ...readOptions(), url });
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
  });
  // A file dropped next to the zone would otherwise replace the page.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());

  const diarize = $("opt-diarize");
  const speakers = $("opt-speakers");
  const syncSpeakers = () => {
    speakers.disabled = !diarize.checked;
  };
  diarize.addEventListener("change", syncSpeakers);
  syncSpeakers();
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
  setupKeyDialog();
  setupLanguage();
  const viewer = new Viewer();
  const tasks = new TaskList($("task-list"), {
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
  try {
    await tasks.load();
  } catch (err) {
    toast(errorText(err), "error");
  }
  document.body.dataset.ready = "true";
}

main();
