import { type Duration, toMs } from '../../duration.js';
import { ConfigError } from '../../errors.js';
import type { RedisEndpoint } from './url.js';

/**
 * Settings of the Redis transport, from `brokerOptions` (milliseconds or duration strings) or the
 * URL query (kombu's names and units where kombu has one).
 *
 * | option | URL | default | what |
 * |---|---|---|---|
 * | `visibilityTimeout` | `visibility_timeout` (seconds, kombu's) | 3600 s | kombu's: a message held this long by a worker that does not refresh its lease (a Python worker) is restored. Set it as the Python fleet's `visibility_timeout`. |
 * | `lease` | `lease` | 30 s | how long a Celeriac delivery stays held without a refresh; refreshed every lease/3 while held, so a lost Celeriac worker's messages come back after at most about 1.5 × lease |
 * | `pollInterval` | `poll_interval` | 500 ms | longest wait of an idle consumer before it looks at its queues again (messages from Celeriac publishers wake it at once; Python publishers do not send wake-ups) |
 * | `fetchBatch` | `fetch_batch` | 128 | most messages taken per round trip (never more than the free credit) |
 * | `maxBacklog` | `max_backlog` | 10000 | most messages a publisher holds while Redis is unreachable; beyond it `publish()` rejects with ConnectionError |
 */
export interface RedisSettings {
  visibilityTimeoutS: number;
  leaseMs: number;
  pollIntervalMs: number;
  fetchBatch: number;
  maxBacklog: number;
  /** How often each consumer looks for expired leases to restore. */
  restoreIntervalMs: number;
}

export function resolveSettings(
  endpoint: RedisEndpoint,
  options: Record<string, unknown> = {},
): RedisSettings {
  const q = endpoint.params;
  const duration = (key: string, queryKey: string, fallback: number): number => {
    const v = options[key] ?? q.get(queryKey) ?? undefined;
    if (v === undefined) return fallback;
    const text = typeof v === 'string' && /^\d+(\.\d+)?$/.test(v) ? Number(v) : v;
    if (typeof text !== 'number' && typeof text !== 'string') {
      throw new ConfigError(
        `brokerOptions.${key}`,
        `expected a duration (ms or '10s'), got ${JSON.stringify(v)}`,
      );
    }
    return toMs(text as Duration, `brokerOptions.${key}`);
  };
  const integer = (key: string, queryKey: string, fallback: number): number => {
    const v = options[key] ?? q.get(queryKey) ?? undefined;
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1)
      throw new ConfigError(`brokerOptions.${key}`, `expected a positive integer, got ${JSON.stringify(v)}`);
    return n;
  };
  let visibilityTimeoutS = 3600;
  if (options.visibilityTimeout !== undefined)
    visibilityTimeoutS = duration('visibilityTimeout', '', 0) / 1000;
  else if (q.get('visibility_timeout') !== null) {
    visibilityTimeoutS = Number(q.get('visibility_timeout'));
    if (!Number.isFinite(visibilityTimeoutS) || visibilityTimeoutS <= 0) {
      throw new ConfigError(
        'broker',
        `visibility_timeout: expected seconds, got '${q.get('visibility_timeout')}'`,
      );
    }
  }
  const leaseMs = duration('lease', 'lease', 30_000);
  if (leaseMs < 300)
    throw new ConfigError('brokerOptions.lease', `expected at least 300ms, got ${leaseMs}ms`);
  if (leaseMs > visibilityTimeoutS * 1000) {
    throw new ConfigError(
      'brokerOptions.lease',
      `must not exceed the visibility timeout (${visibilityTimeoutS}s), got ${leaseMs}ms`,
    );
  }
  const pollIntervalMs = Math.max(10, duration('pollInterval', 'poll_interval', 500));
  return {
    visibilityTimeoutS,
    leaseMs,
    pollIntervalMs,
    fetchBatch: integer('fetchBatch', 'fetch_batch', 128),
    maxBacklog: integer('maxBacklog', 'max_backlog', 10_000),
    restoreIntervalMs: Math.max(100, Math.min(leaseMs / 2, 10_000)),
  };
}
