// The Live tab: the microphone, through an AudioWorklet that makes 16 kHz PCM, to
// WS /ws/live. Partial text shows in grey, finals in black, with the elapsed time and a
// level meter; stopping saves the session as a task and opens it.
import { askForKey, wsUrl } from "./api.js";
import { clock } from "./format.js";
import { onLangChange, t } from "./i18n.js";
import { codeText, toast } from "./ui.js";

const WORKLET = new URL("./live-worklet.js", import.meta.url);

export class LivePanel {
  constructor({ onSaved }) {
    this.onSaved = onSaved;
    this.button = document.getElementById("live-button");
    this.statusEl = document.getElementById("live-status");
    this.timeEl = document.getElementById("live-time");
    this.meterEl = document.getElementById("live-meter");
    this.textEl = document.getElementById("live-text");
    this.finalsEl = document.getElementById("live-finals");
    this.partialEl = document.getElementById("live-partial");
    this.state = "idle"; // idle → starting → recording → stopping → idle
    this.status = "live.idle";
    this.button.addEventListener("click", () => (this.state === "idle" ? this.start() : this.stop()));
    onLangChange(() => this.render());
    this.render();
  }

  async start() {
    // Browsers give the microphone to secure pages only: over plain HTTP (not localhost)
    // navigator.mediaDevices is not there at all.
    if (!window.isSecureContext || !navigator.mediaDevices) {
      this.fail(t("live.needsHttps"));
      return;
    }
    this.setState("starting", "live.starting");
    this.clearText();
    // Made in the click itself, so that the browser lets it run. Asking for 16 kHz lets
    // the browser resample well; where a context of another rate cannot take the
    // microphone (Firefox), the worklet resamples.
    this.context = new AudioContext({ sampleRate: 16000 });
    try {
      this.media = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (err) {
      const name = err && err.name;
      if (name === "NotAllowedError") this.fail(t("live.micDenied"));
      else if (name === "NotFoundError") this.fail(t("live.micMissing"));
      else this.fail(t("live.audioFailed", { message: (err && err.message) || String(err) }));
      return;
    }
    try {
      await this.openAudio();
    } catch (err) {
      this.fail(t("live.audioFailed", { message: err.message || String(err) }));
      return;
    }
    this.openSocket();
  }

  async openAudio() {
    let source;
    try {
      source = this.context.createMediaStreamSource(this.media);
    } catch {
      await this.context.close();
      this.context = new AudioContext();
      source = this.context.createMediaStreamSource(this.media);
    }
    const context = this.context;
    await context.resume();
    await context.audioWorklet.addModule(WORKLET);
    const node = new AudioWorkletNode(context, "pcm-sender");
    const mute = context.createGain();
    mute.gain.value = 0; // the graph must reach the output to run; nothing is heard
    source.connect(node).connect(mute).connect(context.destination);
    node.port.onmessage = ({ data }) => this.onAudio(data);
    this.node = node;
  }

  openSocket() {
    const socket = new WebSocket(wsUrl("/ws/live"));
    socket.binaryType = "arraybuffer";
    socket.onopen = () => {
      socket.send(
        JSON.stringify({
          type: "start",
          language: document.getElementById("live-language").value,
          sample_rate: 16000,
          encoding: "pcm_s16le",
          diarize: document.getElementById("live-diarize").checked,
        }),
      );
    };
    socket.onmessage = (e) => this.onMessage(JSON.parse(e.data));
    socket.onclose = (e) => this.onClose(e);
    this.socket = socket;
  }

  onAudio({ pcm, level }) {
    this.meterEl.value = Math.min(1, level * 4); // speech sits around 0.05–0.25 RMS
    if (this.state !== "starting" && this.state !== "recording") return;
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(pcm);
  }

  onMessage(m) {
    if (m.type === "ready") {
      this.started = performance.now();
      this.timer = setInterval(() => this.tick(), 250);
      this.setState("recording", "live.listening");
      this.tick();
    } else if (m.type === "partial") {
      this.partialUtterance = m.utterance;
      this.partialEl.textContent = m.text ? ` ${m.text}` : "";
    } else if (m.type === "final") {
      this.addFinal(m);
    } else if (m.type === "speech_started") {
      if (this.state === "recording") this.setState("recording", "live.hearing");
    } else if (m.type === "speech_stopped") {
      if (this.state === "recording") this.setState("recording", "live.listening");
    } else if (m.type === "error") {
      this.error = codeText(m.error.code) || m.error.message;
      toast(this.error, "error");
    } else if (m.type === "done") {
      this.saved = m.task;
    }
  }

  addFinal(m) {
    const span = document.createElement("span");
    span.className = "live-final";
    const speaker = m.speaker && m.speaker !== this.lastSpeaker ? `${m.speaker}: ` : "";
    this.lastSpeaker = m.speaker || this.lastSpeaker;
    span.textContent = `${this.finalsEl.childElementCount ? " " : ""}${speaker}${m.text}`;
    span.dataset.start = m.start;
    this.finalsEl.append(span);
    // A partial of a later utterance may already be showing: it stays.
    if (this.partialUtterance == null || this.partialUtterance <= m.utterance) {
      this.partialEl.textContent = "";
    }
    this.textEl.scrollTop = this.textEl.scrollHeight;
  }

  stop() {
    if (this.state !== "recording" && this.state !== "starting") return;
    this.setState("stopping", "live.saving");
    this.releaseAudio();
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ type: "stop" }));
    }
  }

  async onClose(e) {
    const saved = this.saved;
    this.socket = null;
    this.releaseAudio();
    this.saved = null;
    if (e.code === 4401) {
      this.fail(t("error.needKey"));
      await askForKey();
      return;
    }
    if (saved) {
      this.setState("idle", "live.saved");
      this.onSaved(saved);
    } else if (this.state !== "idle") {
      this.fail(this.error || e.reason || t("live.closed"));
    }
    this.error = null;
  }

  releaseAudio() {
    clearInterval(this.timer);
    if (this.node) this.node.port.postMessage("stop");
    if (this.media) for (const track of this.media.getTracks()) track.stop();
    if (this.context) this.context.close();
    this.media = this.context = this.node = null;
    this.meterEl.value = 0;
  }

  fail(message) {
    this.releaseAudio();
    this.setState("idle", null);
    this.statusEl.textContent = message;
    this.statusEl.dataset.kind = "error";
  }

  clearText() {
    this.finalsEl.replaceChildren();
    this.partialEl.textContent = "";
    this.lastSpeaker = null;
    this.timeEl.textContent = clock(0);
  }

  tick() {
    if (this.started != null) this.timeEl.textContent = clock((performance.now() - this.started) / 1000);
  }

  setState(state, status) {
    this.state = state;
    this.status = status;
    this.render();
  }

  render() {
    const recording = this.state === "recording" || this.state === "starting";
    this.button.textContent = t(recording ? "live.stop" : "live.start");
    this.button.classList.toggle("recording", recording);
    this.button.disabled = this.state === "stopping" || this.state === "starting";
    this.button.setAttribute("aria-pressed", String(recording));
    document.getElementById("live-panel").dataset.state = this.state;
    if (this.status) {
      this.statusEl.textContent = t(this.status);
      delete this.statusEl.dataset.kind;
    }
    for (const id of ["live-language", "live-diarize"]) {
      document.getElementById(id).disabled = this.state !== "idle";
    }
  }
}

/** The Files / Live tabs above the side column: arrow keys move between them. */
export function setupTabs() {
  const tabs = [...document.querySelectorAll('.tabs [role="tab"]')];
  const select = (tab) => {
    for (const other of tabs) {
      const on = other === tab;
      other.setAttribute("aria-selected", String(on));
      other.tabIndex = on ? 0 : -1;
      document.getElementById(other.getAttribute("aria-controls")).hidden = !on;
    }
  };
  for (const tab of tabs) {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (e) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
      if (!step) return;
      const next = tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length];
      select(next);
      next.focus();
    });
  }
}
