import { MinHeap } from './heap.js';
import type { StoredMessage } from './priority-queue.js';

interface Parked {
  due: number;
  seq: number;
  stored: StoredMessage;
}

/** setTimeout's longest delay; a later due time re-arms on wake-up. */
const MAX_DELAY = 2 ** 31 - 1;

/**
 * Messages parked until a due time (eta/countdown, `defer`), in a min-heap with one unref'd timer
 * armed for the earliest due time. When it fires, every due message goes to `release`, in due order
 * (FIFO for equal due times).
 *
 * @example
 * const delayed = new DelayedMessages((stored) => queues.get(stored.queue)?.push(stored));
 * delayed.add(stored, Date.now() + 5000);
 * delayed.clear(); // on close: no timer left behind
 */
export class DelayedMessages {
  private readonly heap = new MinHeap<Parked>((a, b) => a.due < b.due || (a.due === b.due && a.seq < b.seq));
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Number.POSITIVE_INFINITY;

  constructor(private readonly release: (stored: StoredMessage) => void) {}

  get length(): number {
    return this.heap.length;
  }

  add(stored: StoredMessage, due: number): void {
    this.heap.push({ due, seq: this.seq++, stored });
    if (due < this.armedFor) this.arm();
  }

  /** Drops every parked message and the timer. */
  clear(): void {
    this.heap.clear();
    this.disarm();
  }

  private arm(): void {
    this.disarm();
    const next = this.heap.peek();
    if (!next) return;
    this.armedFor = next.due;
    const delay = Math.min(MAX_DELAY, Math.max(0, next.due - Date.now()));
    this.timer = setTimeout(this.wake, delay);
    // Parked messages alone must not keep the process alive (as a broker's would not).
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
  }

  private readonly wake = (): void => {
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
    const now = Date.now();
    for (let next = this.heap.peek(); next && next.due <= now; next = this.heap.peek()) {
      this.heap.pop();
      this.release(next.stored);
    }
    this.arm();
  };
}
