import type { Logger } from '../logging.js';

/** What the autoscaler reads from and does to a worker (a `Worker` has all of it). */
export interface ScalableWorker {
  readonly queues: readonly string[];
  readonly concurrency: number;
  readonly active: number;
  readonly reserved: number;
  resize(concurrency: number): void;
}

export interface AutoscaleOptions {
  /** Celery's `--autoscale MAX,MIN`. */
  max: number;
  min: number;
  /** How often load is read. Default 1 s. */
  intervalMs?: number;
  /**
   * No shrink until this long after the last change (Celery's autoscaler keepalive), so a pool does
   * not flap between bursts. Growing is not held back: a backlog is served at once. Default 30 s.
   */
  cooldownMs?: number;
  log?: Logger;
  now?: () => number;
}

/**
 * Celery's `--autoscale MAX,MIN` for the default pool: grows concurrency towards the demand
 * (running + reserved + ready messages in the worker's queues, from `transport.depth`) when every
 * slot is busy, and shrinks towards it once the worker has been over-provisioned for a cooldown.
 * Always within [min, max]. Resizing never stops a running task (`worker.resize`).
 *
 * @example
 * const scaler = new Autoscaler(worker, (q) => transport.depth(q), { max: 10, min: 2 });
 * scaler.start();
 */
export class Autoscaler {
  readonly max: number;
  readonly min: number;
  readonly #worker: ScalableWorker;
  readonly #depth: (queue: string) => Promise<number>;
  readonly #intervalMs: number;
  readonly #cooldownMs: number;
  readonly #log: Logger | undefined;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | null = null;
  #lastChange = 0;
  #ticking = false;

  constructor(worker: ScalableWorker, depth: (queue: string) => Promise<number>, options: AutoscaleOptions) {
    this.#worker = worker;
    this.#depth = depth;
    this.max = options.max;
    this.min = options.min;
    this.#intervalMs = options.intervalMs ?? 1000;
    this.#cooldownMs = options.cooldownMs ?? 30_000;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
  }

  start(): void {
    if (this.#timer) return;
    this.#lastChange = this.#now();
    this.#timer = setInterval(() => void this.tick(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** One decision: returns the new concurrency when it changed, else null. */
  async tick(): Promise<number | null> {
    if (this.#ticking) return null;
    this.#ticking = true;
    try {
      let ready = 0;
      for (const q of this.#worker.queues) ready += await this.#depth(q);
      const w = this.#worker;
      const size = w.concurrency;
      const demand = w.active + w.reserved + ready;
      const target = Math.min(this.max, Math.max(this.min, demand));
      const now = this.#now();
      const grow = target > size && w.active >= size;
      const shrink = target < size && now - this.#lastChange >= this.#cooldownMs;
      if (!grow && !shrink) return null;
      w.resize(target);
      this.#lastChange = now;
      this.#log?.info(
        { from: size, to: target, active: w.active, ready },
        grow ? 'autoscale: grew' : 'autoscale: shrank',
      );
      return target;
    } catch (err) {
      this.#log?.warn({ err }, 'autoscale: could not read queue depth; keeping the current size');
      return null;
    } finally {
      this.#ticking = false;
    }
  }
}

/**
 * Parses Celery's `MAX,MIN` (or `MAX` alone: MIN 0 in Celery, 1 here since a pool has at least
 * one slot). Throws a message naming what was expected.
 */
export function parseAutoscale(value: string): { max: number; min: number } {
  const parts = value.split(',').map((s) => s.trim());
  const nums = parts.map(Number);
  const ok = parts.length >= 1 && parts.length <= 2 && parts.every((p) => /^\d+$/.test(p));
  if (!ok) throw new Error(`expected MAX,MIN (e.g. 10,3), got '${value}'`);
  const max = nums[0] as number;
  const min = Math.max(1, nums[1] ?? 1);
  if (max < 1) throw new Error(`expected MAX ≥ 1, got ${max}`);
  if (min > max) throw new Error(`expected MIN ≤ MAX, got ${max},${min}`);
  return { max, min };
}
