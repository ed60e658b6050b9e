// Progress that moves between the server's reports, honestly.
//
// The server sends how far a task is and when it expects to finish (from this machine's
// measured speed). Between reports the time left counts down, and the bar moves on at the
// pace that estimate implies, but never more than a step ahead of what the server said,
// and never backwards. A later estimate moves the end only when it differs by more than
// a few seconds, so the time left does not flicker upwards.

const AHEAD = 0.12; // the most the bar runs ahead of the last report
const JITTER_S = 3; // a later end closer than this to the shown one is not shown

export class Estimate {
  constructor() {
    this.fraction = 0; // the server's
    this.at = null; // when the server's fraction last changed (ms)
    this.end = null; // expected end (ms), or null while unknown
    this.shown = 0; // the fraction on screen, which only grows
  }

  /** A report from the server: `fraction` done, `eta` seconds left (or null). */
  report(fraction, eta, now = performance.now()) {
    if (fraction < this.fraction - 0.05) this.shown = fraction; // a retry started over
    // Reports while a batch is being decoded repeat the same fraction: the bar keeps
    // moving from when it last changed, towards the expected end.
    const known = eta != null && this.end === null; // the first estimate of this run
    if (this.at === null || fraction !== this.fraction || known) this.at = now;
    this.fraction = fraction;
    if (eta == null) {
      this.end = null;
    } else {
      const end = now + eta * 1000;
      if (this.end === null || end < this.end || end - this.end > JITTER_S * 1000) this.end = end;
    }
    this.shown = Math.max(this.shown, fraction);
  }

  /** The fraction to draw now. */
  progress(now = performance.now()) {
    let guess = this.fraction;
    const span = this.end === null ? 0 : this.end - this.at;
    if (span > 0) {
      const share = Math.min(1, (now - this.at) / span);
      guess = this.fraction + (1 - this.fraction) * share;
    }
    guess = Math.min(guess, this.fraction + AHEAD, 0.99);
    this.shown = Math.max(this.shown, guess);
    return this.shown;
  }

  /** Seconds left now, counting down; null while unknown. */
  secondsLeft(now = performance.now()) {
    return this.end === null ? null : Math.max(0, (this.end - now) / 1000);
  }
}
