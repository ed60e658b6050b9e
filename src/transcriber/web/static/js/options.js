// The upload options: the installed models from /v1/models, what a request sends, a short
// summary on the folded panel, and the same choices for a retry.
import { request } from "./api.js";
import { onLangChange, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const USED = "transcriber.optionsUsed";
// OpenAI's names, which /v1/models lists for its clients: they mean the default model.
const ALIASES = /^(whisper-1|gpt-)/;
let models = [];

/** Fill the model selects with the installed models; the first listed is the default. */
export async function loadModels() {
  try {
    const page = await request("/v1/models");
    models = page.data.map((m) => m.id).filter((id) => !ALIASES.test(id));
  } catch {
    models = [];
  }
  fillModels($("opt-model"));
  fillModels($("retry-model"));
  summarise();
}

function fillModels(select, chosen) {
  const keep = chosen ?? select.value;
  const names = models.length ? models : [""];
  select.replaceChildren(
    ...names.map((name) => {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = name || "base";
      return option;
    }),
  );
  if (keep && names.includes(keep)) select.value = keep;
}

/** The form fields of an upload, as /api/tasks takes them. */
export function readOptions() {
  const fields = { language: $("opt-language").value };
  const model = $("opt-model").value;
  if (model && model !== models[0]) fields.model = model;
  if ($("opt-words").checked) fields.word_timestamps = "true";
  if ($("opt-diarize").checked) {
    fields.diarize = "true";
    const speakers = $("opt-speakers").value;
    if (speakers) fields.speakers = speakers;
  }
  if ($("opt-split").checked) fields.channels = "split";
  if ($("opt-translate").checked) fields.task = "translate";
  const prompt = $("opt-prompt").value.trim();
  if (prompt) fields.prompt = prompt;
  for (const edge of ["start", "end"]) {
    const at = $(`opt-${edge}`).value.trim(); // seconds or [h:]mm:ss, read by the server
    if (at) fields[edge] = at;
  }
  return fields;
}

/** What the folded panel says it will do: "Auto · base · speakers". */
function summarise() {
  const language = $("opt-language");
  const parts = [language.options[language.selectedIndex]?.textContent || ""];
  const model = $("opt-model").value || models[0] || "base";
  parts.push(model);
  if ($("opt-words").checked) parts.push(t("options.summaryWords"));
  if ($("opt-diarize").checked || $("opt-split").checked) parts.push(t("options.summarySpeakers"));
  if ($("opt-translate").checked) parts.push(t("options.summaryTranslate"));
  $("options-summary").textContent = `· ${parts.join(" · ")}`;
}

/** Options open on a first visit; once a file was sent with them they fold away. */
export function setupOptions() {
  const panel = $("options");
  panel.open = !localStorage.getItem(USED);
  const diarize = $("opt-diarize");
  const speakers = $("opt-speakers");
  const sync = () => {
    speakers.disabled = !diarize.checked;
    summarise();
  };
  panel.addEventListener("change", sync);
  sync();
  onLangChange(() => {
    fillModels($("opt-model"));
    fillModels($("retry-model"));
    summarise();
  });
}

export function foldOptions() {
  localStorage.setItem(USED, "1");
  $("options").open = false;
}

/** Ask which options a retry should use, filled with the task's; resolves with the
 * changes for POST /retry, or null when dismissed. */
export function askRetryOptions(task) {
  const dialog = $("retry-dialog");
  const o = task.options || {};
  const language = $("retry-language");
  language.replaceChildren(
    ...[...$("opt-language").options].map((opt) => new Option(opt.textContent, opt.value)),
  );
  const spoken = o.language || "auto";
  if (![...language.options].some((opt) => opt.value === spoken)) {
    language.append(new Option(spoken.toUpperCase(), spoken));
  }
  language.value = spoken;
  fillModels($("retry-model"), o.model);
  $("retry-words").checked = Boolean(o.word_timestamps);
  $("retry-diarize").checked = Boolean(o.diarize);
  $("retry-speakers").value = o.num_speakers || "";
  $("retry-speakers").disabled = !o.diarize;
  $("retry-translate").checked = Boolean(o.translate);
  $("retry-name").textContent = task.filename;
  $("retry-diarize").onchange = () => {
    $("retry-speakers").disabled = !$("retry-diarize").checked;
  };
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        if (dialog.returnValue !== "retry") return resolve(null);
        const change = {
          language: language.value,
          word_timestamps: $("retry-words").checked,
          diarize: $("retry-diarize").checked,
          task: $("retry-translate").checked ? "translate" : "transcribe",
        };
        const model = $("retry-model").value;
        if (model) change.model = model;
        const speakers = Number($("retry-speakers").value);
        if (change.diarize) change.speakers = speakers || null; // null: find the count again
        resolve(change);
      },
      { once: true },
    );
    dialog.showModal();
    language.focus();
  });
}
