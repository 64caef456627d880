import { ConfigError } from '../errors.js';

/** A rate: tasks per second as a number, or Celery's string form `'100/s'`, `'10/m'`, `'5/h'`. */
export type Rate = number | `${number}/${'s' | 'm' | 'h'}`;

const PER: Record<string, number> = { s: 1, m: 60, h: 3600 };

/**
 * Tasks per second from a rate; 0 or null means unlimited (Celery's meaning).
 *
 * @example
 * parseRate('10/m') // 0.1666…
 */
export function parseRate(rate: Rate | string | null | undefined, field = 'rateLimit'): number {
  if (rate === null || rate === undefined || rate === '' || rate === 0) return 0;
  if (typeof rate === 'number') {
    if (!Number.isFinite(rate) || rate < 0)
      throw new ConfigError(field, `expected tasks per second ≥ 0, got ${rate}`);
    return rate;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*([smh]))?\s*$/.exec(rate);
  if (!m) throw new ConfigError(field, `expected a rate like '100/s', '10/m' or '5/h', got '${rate}'`);
  return Number(m[1]) / (PER[m[2] ?? 's'] as number);
}

/**
 * A token bucket: `perSecond` tokens a second, holding at most one second's worth (at least one),
 * as Celery's per-worker task rate limit.
 */
export class TokenBucket {
  #perSecond: number;
  #tokens: number;
  #last: number;

  constructor(perSecond: number, now = Date.now()) {
    this.#perSecond = perSecond;
    this.#tokens = this.#capacity();
    this.#last = now;
  }

  get perSecond(): number {
    return this.#perSecond;
  }

  /** Takes a token if one is there; otherwise returns the ms until one will be. */
  take(now = Date.now()): number {
    this.#refill(now);
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.#tokens) / this.#perSecond) * 1000);
  }

  #capacity(): number {
    return Math.max(1, this.#perSecond);
  }

  #refill(now: number): void {
    this.#tokens = Math.min(this.#capacity(), this.#tokens + ((now - this.#last) / 1000) * this.#perSecond);
    this.#last = now;
  }
}
