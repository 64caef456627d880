import type { Output } from './io.js';

/**
 * A live progress line. On a terminal it rewrites one line in place; elsewhere (CI logs, pipes) it
 * prints a line at most every `everyMs`, so logs stay readable.
 *
 * @example
 * const p = new ProgressLine(io.stderr);
 * p.update('sent 10/100'); … p.done('sent 100/100');
 */
export class ProgressLine {
  readonly #out: Output;
  readonly #everyMs: number;
  #last = 0;
  #width = 0;

  constructor(out: Output, options: { everyMs?: number } = {}) {
    this.#out = out;
    this.#everyMs = options.everyMs ?? 1000;
  }

  update(text: string): void {
    if (this.#out.isTTY) {
      const pad = Math.max(0, this.#width - text.length);
      this.#out.write(`\r${text}${' '.repeat(pad)}`);
      this.#width = text.length;
      return;
    }
    const now = Date.now();
    if (now - this.#last < this.#everyMs) return;
    this.#last = now;
    this.#out.write(`${text}\n`);
  }

  /** The final state, always printed, ending the line. */
  done(text: string): void {
    if (this.#out.isTTY) {
      this.update(text);
      this.#out.write('\n');
    } else {
      this.#out.write(`${text}\n`);
    }
    this.#width = 0;
  }
}

/**
 * A text progress bar, `[██████░░░░░░]`, for long operations (bench steps, replays).
 *
 * @example
 * progressBar(3, 12, 12) // '[███░░░░░░░░░]'
 */
export function progressBar(done: number, total: number, width = 24): string {
  const ratio = total > 0 ? Math.min(1, Math.max(0, done / total)) : 1;
  const full = Math.round(ratio * width);
  return `[${'█'.repeat(full)}${'░'.repeat(width - full)}]`;
}
