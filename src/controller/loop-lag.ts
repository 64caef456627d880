import type { IntervalHistogram } from 'node:perf_hooks';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { HealthReport } from '../health.js';

/** Thresholds on the event loop's delay (p99 over the last window), in ms. */
export interface LoopLagOptions {
  /** Degraded from this p99 delay on. Default 200 ms. */
  degradedMs?: number;
  /** Unhealthy (and `/livez` fails) from this p99 delay on. Default 2,000 ms. */
  unhealthyMs?: number;
  /** Length of a measuring window. Default 5 s. */
  windowMs?: number;
}

/**
 * Watches event-loop delay with `perf_hooks.monitorEventLoopDelay`. A task that blocks the loop
 * (CPU work on the async pool) delays every other task, the broker's heartbeats and the health
 * endpoint itself: this says so, with the measured delay, in `report()`.
 *
 * The report reads the last complete window (or the current one when it is worse), so one slow
 * tick is forgotten after a window and a loop that stays blocked keeps showing.
 */
export class LoopLag {
  readonly degradedMs: number;
  readonly unhealthyMs: number;
  readonly #windowMs: number;
  #histogram: IntervalHistogram | null = null;
  #timer: NodeJS.Timeout | null = null;
  #lastP99Ms = 0;
  #lastMaxMs = 0;

  constructor(options: LoopLagOptions = {}) {
    this.degradedMs = options.degradedMs ?? 200;
    this.unhealthyMs = options.unhealthyMs ?? 2000;
    this.#windowMs = options.windowMs ?? 5000;
  }

  start(): void {
    if (this.#histogram) return;
    this.#histogram = monitorEventLoopDelay({ resolution: 20 });
    this.#histogram.enable();
    this.#timer = setInterval(() => this.#roll(), this.#windowMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#histogram?.disable();
    this.#histogram = null;
    this.#timer = null;
  }

  /** p99 and max delay (ms) of the worse of the last complete window and the current one. */
  sample(): { p99Ms: number; maxMs: number } {
    const h = this.#histogram;
    const current = h && h.count > 0 ? { p99Ms: h.percentile(99) / 1e6, maxMs: h.max / 1e6 } : null;
    const last = { p99Ms: this.#lastP99Ms, maxMs: this.#lastMaxMs };
    return current && current.p99Ms > last.p99Ms ? current : last;
  }

  report(): HealthReport {
    if (!this.#histogram) return { status: 'healthy', reason: 'not watched' };
    const { p99Ms, maxMs } = this.sample();
    const shown = `event loop delay p99 ${Math.round(p99Ms)} ms (max ${Math.round(maxMs)} ms)`;
    if (p99Ms >= this.unhealthyMs)
      return { status: 'unhealthy', reason: `${shown} ≥ ${this.unhealthyMs} ms: the loop is blocked` };
    if (p99Ms >= this.degradedMs)
      return { status: 'degraded', reason: `${shown} ≥ ${this.degradedMs} ms: tasks are blocking the loop` };
    return { status: 'healthy' };
  }

  #roll(): void {
    const h = this.#histogram;
    if (!h) return;
    this.#lastP99Ms = h.count > 0 ? h.percentile(99) / 1e6 : 0;
    this.#lastMaxMs = h.count > 0 ? h.max / 1e6 : 0;
    h.reset();
  }
}
