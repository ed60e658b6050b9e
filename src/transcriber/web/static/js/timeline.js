// The timeline under the player: the recording's loudness (peaks measured by the server),
// who speaks when in the speakers' colours, and the playhead. Click or arrow keys seek.
import { clock } from "./format.js";
import { onThemeChange } from "./theme.js";

const SPEAKER_COLOURS = 8;

export class Timeline {
  /** `onSeek(seconds)` is called when the reader picks a point. */
  constructor(el, canvas, onSeek) {
    this.el = el;
    this.canvas = canvas;
    this.onSeek = onSeek;
    this.peaks = null; // {start, seconds_per_peak, peaks}
    this.turns = []; // [{start, end, colour}]
    this.duration = 0;
    this.now = 0;
    el.addEventListener("click", (e) => {
      if (!this.duration) return;
      const r = el.getBoundingClientRect();
      this.onSeek(((e.clientX - r.left) / r.width) * this.duration);
    });
    el.addEventListener("keydown", (e) => {
      const moves = { ArrowLeft: -5, ArrowRight: 5, PageDown: -30, PageUp: 30 };
      let to = null;
      if (e.key in moves) to = this.now + moves[e.key];
      else if (e.key === "Home") to = 0;
      else if (e.key === "End") to = this.duration;
      if (to === null || !this.duration) return;
      e.preventDefault();
      this.onSeek(Math.max(0, Math.min(this.duration, to)));
    });
    new ResizeObserver(() => this.draw()).observe(el);
    onThemeChange(() => this.draw());
  }

  reset() {
    this.peaks = null;
    this.turns = [];
    this.duration = 0;
    this.now = 0;
    this.draw();
  }

  setPeaks(peaks) {
    this.peaks = peaks;
    this.draw();
  }

  /** Speaker turns from the transcript's segments; `colour(label)` picks the colour. */
  setTurns(segments, colour) {
    this.turns = segments
      .filter((s) => s.speaker)
      .map((s) => ({ start: s.start, end: s.end, colour: colour(s.speaker) % SPEAKER_COLOURS }));
    this.draw();
  }

  setDuration(seconds) {
    if (Number.isFinite(seconds) && seconds > 0 && Math.abs(seconds - this.duration) > 0.01) {
      this.duration = seconds;
      this.el.setAttribute("aria-valuemax", String(Math.round(seconds)));
      this.draw();
    }
  }

  setTime(seconds) {
    this.now = seconds;
    this.el.setAttribute("aria-valuenow", String(Math.round(seconds)));
    this.el.setAttribute("aria-valuetext", clock(seconds));
    this.draw();
  }

  draw() {
    const { canvas } = this;
    const width = this.el.clientWidth;
    const height = this.el.clientHeight;
    if (!width || !height) return;
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
    if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const css = getComputedStyle(this.el);
    const colour = (name) => css.getPropertyValue(name).trim();
    const x = (t) => (this.duration ? (t / this.duration) * width : 0);
    const strip = 5;
    // Who speaks: a band of each speaker's colour under the waveform.
    for (const turn of this.turns) {
      ctx.fillStyle = colour(`--s${turn.colour}`);
      ctx.globalAlpha = 0.16;
      ctx.fillRect(x(turn.start), 0, Math.max(1, x(turn.end) - x(turn.start)), height - strip);
      ctx.globalAlpha = 1;
      ctx.fillRect(x(turn.start), height - strip, Math.max(1, x(turn.end) - x(turn.start)), strip);
    }
    const played = x(this.now);
    if (this.peaks && this.duration) {
      const { start, seconds_per_peak: step, peaks } = this.peaks;
      const mid = (height - strip) / 2;
      const bar = Math.max(1, (step / this.duration) * width);
      peaks.forEach((level, i) => {
        const at = x(start + i * step);
        const h = Math.max(1, (level / 100) * (height - strip - 4));
        ctx.fillStyle = at < played ? colour("--accent") : colour("--wave");
        ctx.fillRect(at, mid - h / 2, Math.max(1, bar - (bar > 3 ? 1 : 0)), h);
      });
    }
    ctx.fillStyle = colour("--text");
    ctx.fillRect(Math.min(width - 2, played), 0, 2, height);
  }
}
