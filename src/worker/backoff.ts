import { toMs } from '../duration.js';
import type { RetryPolicy } from '../task.js';

/** A retry policy with defaults applied, in milliseconds. */
export interface ResolvedRetry {
  max: number;
  backoff: 'fixed' | 'exponential';
  baseMs: number;
  capMs: number;
  jitter: boolean;
}

const DEFAULT_POLICY = {};
const resolved = new WeakMap<RetryPolicy, ResolvedRetry>();

/**
 * Defaults: 3 retries (Celery's max_retries), exponential from 1s up to 10m, with jitter. Resolved
 * once per policy object (a task's options are fixed once registered; this runs once per task run).
 */
export function resolveRetry(policy: RetryPolicy | undefined): ResolvedRetry {
  const key = policy ?? DEFAULT_POLICY;
  let r = resolved.get(key);
  if (!r) {
    r = resolveNow(policy);
    resolved.set(key, r);
  }
  return r;
}

function resolveNow(policy: RetryPolicy | undefined): ResolvedRetry {
  return {
    max: policy?.max ?? 3,
    backoff: policy?.backoff ?? 'exponential',
    baseMs: toMs(policy?.base ?? 1000, 'retry.base'),
    capMs: toMs(policy?.cap ?? 600_000, 'retry.cap'),
    jitter: policy?.jitter ?? true,
  };
}

/**
 * The delay before retry number `retries + 1`: base·2^retries (exponential) or base (fixed), capped,
 * and with jitter a random value in [delay/2, delay] so retries do not stampede yet still back off.
 *
 * @example
 * retryDelay({ max: 5, backoff: 'exponential', baseMs: 1000, capMs: 60000, jitter: false }, 3) // 8000
 */
export function retryDelay(policy: ResolvedRetry, retries: number, random = Math.random): number {
  const raw = policy.backoff === 'fixed' ? policy.baseMs : policy.baseMs * 2 ** Math.min(retries, 40);
  const delay = Math.min(raw, policy.capMs);
  return policy.jitter ? Math.round(delay / 2 + random() * (delay / 2)) : delay;
}
