// REST, uploads and WebSocket URLs, with the API key (when the service has keys) attached.
const KEY_STORE = "transcriber.apiKey";
let promptForKey = async () => null;
let pendingPrompt = null;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const apiKey = () => localStorage.getItem(KEY_STORE) || "";

export function setApiKey(key) {
  if (key) localStorage.setItem(KEY_STORE, key);
  else localStorage.removeItem(KEY_STORE);
}

/** `fn(hadKey)` shows the key form and resolves with the new key, or null when dismissed. */
export function setKeyPrompt(fn) {
  promptForKey = fn;
}

/** One prompt at a time, however many requests were refused together. */
export function askForKey() {
  if (!pendingPrompt) {
    pendingPrompt = Promise.resolve(promptForKey(Boolean(apiKey()))).finally(() => {
      pendingPrompt = null;
    });
  }
  return pendingPrompt;
}

function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

// A proxy in front of the service answers some statuses itself, with a page instead of the
// service's JSON (nginx's 413, a 502 while the service restarts): worded as the service's
// own codes for the same thing.
const PROXY_CODES = { 408: "request_timeout", 413: "too_large", 502: "unavailable", 503: "unavailable", 504: "unavailable" };

function errorFrom(status, text, fallback) {
  try {
    const body = JSON.parse(text);
    if (body && body.error) return new ApiError(status, body.error.code, body.error.message);
  } catch {
    // not JSON: fall through
  }
  return new ApiError(status, PROXY_CODES[status] || "http_error", fallback || `HTTP ${status}`);
}

/** A JSON API call; `body` is sent as JSON. Asks for the key on 401, then tries again. */
export async function request(path, { method = "GET", raw = false, body } = {}) {
  for (let attempt = 0; ; attempt += 1) {
    let res;
    const headers = authHeaders();
    const init = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    try {
      res = await fetch(path, init);
    } catch {
      throw new ApiError(0, "network", "");
    }
    if (res.status === 401 && attempt < 3 && (await askForKey())) continue;
    if (!res.ok) throw errorFrom(res.status, await res.text(), res.statusText);
    if (raw) return res;
    return res.status === 204 ? null : res.json();
  }
}

/** POST /api/tasks with upload progress; `file` null sends `fields.url` instead of a file.
 * Returns {promise, abort}. */
export function uploadFile(file, fields, onProgress) {
  let xhr = null;
  let aborted = false;
  const send = () =>
    new Promise((resolve, reject) => {
      xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/tasks");
      for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
      const size = file ? file.size : 0;
      xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : size);
      xhr.onload = () => resolve({ status: xhr.status, text: xhr.responseText });
      xhr.onerror = () => reject(new ApiError(0, "network", ""));
      xhr.onabort = () => reject(new ApiError(0, "aborted", "aborted"));
      const form = new FormData();
      for (const [k, v] of Object.entries(fields)) {
        if (v !== null && v !== undefined && v !== "") form.append(k, String(v));
      }
      if (file) form.append("file", file, file.name);
      xhr.send(form);
    });
  const promise = (async () => {
    for (let attempt = 0; ; attempt += 1) {
      const { status, text } = await send();
      if (status === 401 && attempt < 3 && !aborted && (await askForKey())) continue;
      if (status < 200 || status >= 300) throw errorFrom(status, text, `HTTP ${status}`);
      return JSON.parse(text);
    }
  })();
  return {
    promise,
    abort: () => {
      aborted = true;
      if (xhr) xhr.abort();
    },
  };
}

/** A URL a media element can load by itself: it cannot send headers, so the key rides
 * along as `?token=` (as for the WebSocket), and the browser asks for byte ranges. */
export function mediaUrl(path) {
  const url = new URL(path, location.href);
  const key = apiKey();
  if (key) url.searchParams.set("token", key);
  return url.pathname + url.search;
}

export function wsUrl(path) {
  const url = new URL(path, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const key = apiKey();
  if (key) url.searchParams.set("token", key);
  return url.toString();
}

/** Fetch a file with the key attached and hand it to the browser as a download. */
export async function download(path) {
  const res = await request(path, { raw: true });
  const blob = await res.blob();
  const name = filenameFrom(res.headers.get("content-disposition")) || "transcript";
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function filenameFrom(header) {
  if (!header) return null;
  const star = /filename\*=UTF-8''([^;]+)/i.exec(header);
  if (star) {
    try {
      return decodeURIComponent(star[1]);
    } catch {
      // malformed: use the plain one
    }
  }
  const plain = /filename="?([^";]+)"?/i.exec(header);
  return plain ? plain[1] : null;
}
