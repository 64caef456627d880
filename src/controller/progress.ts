import type { HealthReport } from '../health.js';

/** What the progress watch reads from a worker (a `Worker` has all of it). */
export interface ConsumingWorker {
  readonly queues: readonly string[];
  /** Tasks running now. */
  readonly active: number;
  /** Received and not started. */
  readonly reserved: number;
  /** Deliveries received so far (a counter that only grows). */
  readonly stats: { readonly received: number };
  /** Deliveries the worker may hold at once (pools' sizes + prefetch). */
  credit(): number;
}

export interface ProgressOptions {
  /** Unhealthy once work waits, the worker has room and nothing arrived for this long. Default 60 s. */
  stallAfterMs?: number;
  /** How often depth is read from the broker. Default 5 s. */
  intervalMs?: number;
  /** The clock (tests). */
  now?: () => number;
}

/**
 * Consumption progress: the failure that worker health checks usually miss. A worker can be
 * connected, with a live event loop, and still have stopped taking messages (a consumer loop that
 * died, a blocking read that never returns, a lost subscription). Such a worker is *unhealthy*
 * when its queues have ready messages, it has free credit, and it has received nothing for
 * `stallAfterMs`. A busy worker (no free credit) or an empty queue is never a stall.
 *
 * The clock starts when the condition first holds (not at the last delivery), so a worker that was
 * busy with long tasks for an hour is not called stalled the instant a slot frees.
 */
export class ProgressWatch {
  readonly stallAfterMs: number;
  readonly #worker: ConsumingWorker;
  readonly #depth: (queue: string) => Promise<number>;
  readonly #intervalMs: number;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | null = null;
  #lastReceived = -1;
  #waitingSince: number | null = null;
  #depthSeen = 0;
  #free = 0;
  #error: string | null = null;

  constructor(
    worker: ConsumingWorker,
    depth: (queue: string) => Promise<number>,
    options: ProgressOptions = {},
  ) {
    this.#worker = worker;
    this.#depth = depth;
    this.stallAfterMs = options.stallAfterMs ?? 60_000;
    this.#intervalMs = options.intervalMs ?? 5000;
    this.#now = options.now ?? Date.now;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.check(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Reads depth and the worker's counters once (the timer calls this; tests may too). */
  async check(): Promise<void> {
    let depth = 0;
    try {
      for (const q of this.#worker.queues) depth += await this.#depth(q);
      this.#error = null;
    } catch (err) {
      this.#error = err instanceof Error ? err.message : String(err);
      return;
    }
    const received = this.#worker.stats.received;
    const free = this.#worker.credit() - this.#worker.active - this.#worker.reserved;
    const now = this.#now();
    this.#depthSeen = depth;
    this.#free = free;
    if (received !== this.#lastReceived || depth === 0 || free <= 0) this.#waitingSince = null;
    else this.#waitingSince ??= now;
    this.#lastReceived = received;
  }

  report(): HealthReport {
    if (this.#error) return { status: 'degraded', reason: `cannot read queue depth: ${this.#error}` };
    if (this.#waitingSince === null) return { status: 'healthy' };
    const waited = this.#now() - this.#waitingSince;
    if (waited < this.stallAfterMs) return { status: 'healthy' };
    return {
      status: 'unhealthy',
      reason:
        `not consuming: ${this.#depthSeen} message${this.#depthSeen === 1 ? '' : 's'} ready in ${this.#worker.queues.join(',')} ` +
        `and ${this.#free} free slot${this.#free === 1 ? '' : 's'}, but nothing received for ${Math.round(waited / 1000)} s`,
    };
  }
}
