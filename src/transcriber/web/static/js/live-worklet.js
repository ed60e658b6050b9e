// AudioWorklet for the Live tab: microphone samples at the context's rate → 16 kHz
// 16-bit PCM in ~100 ms blocks, posted to the page with the block's level (RMS, 0..1).
const TARGET_RATE = 16000;
const BLOCK = 1600; // samples at 16 kHz: 100 ms

class PcmSender extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / TARGET_RATE; // input samples per output sample
    this.pos = 0; // where the next output sample falls in the input, fractional
    this.prev = 0; // the input sample before the current render quantum
    this.out = new Int16Array(BLOCK);
    this.filled = 0;
    this.energy = 0;
    this.running = true;
    this.port.onmessage = (e) => {
      if (e.data === "stop") this.running = false;
    };
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input) return this.running;
    if (this.step === 1) {
      for (let i = 0; i < input.length; i += 1) this.push(input[i]);
    } else {
      // Average over the span one output sample covers (a simple low-pass), then step on.
      while (this.pos < input.length) {
        const from = Math.max(0, Math.floor(this.pos - this.step / 2));
        const to = Math.min(input.length, Math.ceil(this.pos + this.step / 2));
        let sum = 0;
        for (let i = from; i < to; i += 1) sum += input[i];
        this.push(to > from ? sum / (to - from) : this.prev);
        this.pos += this.step;
      }
      this.pos -= input.length;
      this.prev = input[input.length - 1];
    }
    return this.running;
  }

  push(value) {
    const v = Math.max(-1, Math.min(1, value));
    this.energy += v * v;
    this.out[this.filled] = v < 0 ? v * 0x8000 : v * 0x7fff;
    this.filled += 1;
    if (this.filled === BLOCK) {
      const level = Math.sqrt(this.energy / BLOCK);
      this.port.postMessage({ pcm: this.out.buffer, level }, [this.out.buffer]);
      this.out = new Int16Array(BLOCK);
      this.filled = 0;
      this.energy = 0;
    }
  }
}

registerProcessor("pcm-sender", PcmSender);
