import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';

/** The shared Redis of every machine and CI (tests fail, never skip, when it is missing). */
export const REDIS_HOST = process.env.CELERIAC_TEST_REDIS_HOST ?? '127.0.0.1';
export const REDIS_PORT = Number(process.env.CELERIAC_TEST_REDIS_PORT ?? 6379);

/** A key prefix unique to one test file run (kombu's global_keyprefix), so files never collide. */
export function uniquePrefix(label: string): string {
  return `celeriac-test:${label}:${randomUUID().slice(0, 8)}:`;
}

export function redisUrl(
  options: { db?: number; prefix?: string; query?: Record<string, string> } = {},
): string {
  const params = new URLSearchParams(options.query ?? {});
  if (options.prefix) params.set('global_keyprefix', options.prefix);
  const q = params.toString();
  return `redis://${REDIS_HOST}:${REDIS_PORT}/${options.db ?? 0}${q ? `?${q}` : ''}`;
}

/** A plain client for inspecting keys; `failFast` makes a missing Redis fail the test at once. */
export function inspector(db = 0): Redis {
  return new Redis({
    host: REDIS_HOST,
    port: REDIS_PORT,
    db,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
}

/** Deletes every key under a prefix, or matching `pattern` (SCAN, never KEYS). */
export async function deletePrefix(client: Redis, prefix: string, pattern?: string): Promise<number> {
  let cursor = '0';
  let n = 0;
  const match = pattern ?? `${prefix.replace(/([*?[\]\\])/g, '\\$1')}*`;
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) n += await client.del(...keys);
  } while (cursor !== '0');
  return n;
}
