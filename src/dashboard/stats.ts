import type { TaskView } from '../observability/events/state.js';

/** One point of the charts: a time bucket's throughput, failures and runtime percentiles (seconds). */
export interface SeriesPoint {
  /** Bucket start, epoch seconds. */
  t: number;
  succeeded: number;
  failed: number;
  retried: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

interface Bucket {
  t: number;
  succeeded: number;
  failed: number;
  retried: number;
  runtimes: number[];
}

/** The p-th percentile (0–100) of sorted values, nearest rank. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (!sorted.length) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] ?? null;
}

/**
 * Throughput, failures and runtime percentiles over time, in fixed buckets (default 5 s over the
 * last 10 minutes), fed with task state changes as events arrive.
 */
export class TaskSeries {
  readonly #bucketS: number;
  readonly #keep: number;
  readonly #buckets: Bucket[] = [];

  constructor(options: { bucketSeconds?: number; windowSeconds?: number } = {}) {
    this.#bucketS = options.bucketSeconds ?? 5;
    this.#keep = Math.ceil((options.windowSeconds ?? 600) / this.#bucketS);
  }

  /** Records a task that reached `state` at `timestamp` (epoch seconds). */
  record(task: TaskView, timestamp: number): void {
    const b = this.#bucket(timestamp);
    if (task.state === 'SUCCESS') {
      b.succeeded++;
      if (task.runtime !== null) b.runtimes.push(task.runtime);
    } else if (task.state === 'FAILURE') b.failed++;
    else if (task.state === 'RETRY') b.retried++;
  }

  /** The points of the window, oldest first, empty buckets included, up to `now`. */
  points(now = Date.now() / 1000): SeriesPoint[] {
    const last = Math.floor(now / this.#bucketS) * this.#bucketS;
    const first = last - (this.#keep - 1) * this.#bucketS;
    const byT = new Map(this.#buckets.map((b) => [b.t, b]));
    const out: SeriesPoint[] = [];
    for (let t = first; t <= last; t += this.#bucketS) {
      const b = byT.get(t);
      const sorted = b ? [...b.runtimes].sort((x, y) => x - y) : [];
      out.push({
        t,
        succeeded: b?.succeeded ?? 0,
        failed: b?.failed ?? 0,
        retried: b?.retried ?? 0,
        p50: percentile(sorted, 50),
        p95: percentile(sorted, 95),
        p99: percentile(sorted, 99),
      });
    }
    return out;
  }

  #bucket(timestamp: number): Bucket {
    const t = Math.floor(timestamp / this.#bucketS) * this.#bucketS;
    let b = this.#buckets.find((x) => x.t === t);
    if (!b) {
      b = { t, succeeded: 0, failed: 0, retried: 0, runtimes: [] };
      this.#buckets.push(b);
      this.#buckets.sort((x, y) => x.t - y.t);
      while (this.#buckets.length > this.#keep) this.#buckets.shift();
    }
    return b;
  }
}
