import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fairScenario } from '../../unit/controller/fair-scenario.js';
import { isolatedRedisUrl, REDIS_HOST, REDIS_PORT, redisAnswers } from '../cli/helpers.js';

/** Fair prefetch over a real Redis: two workers, two connections, keys under a prefix of this file. */
const { url, prefix } = isolatedRedisUrl('fair-prefetch');

beforeAll(async () => {
  if (!(await redisAnswers())) throw new Error(`Redis is not answering on ${REDIS_HOST}:${REDIS_PORT}`);
});

afterAll(async () => {
  const redis = new Redis({ host: REDIS_HOST, port: REDIS_PORT, lazyConnect: true });
  await redis.connect();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
  await redis.quit();
});

describe('fair prefetch (Redis)', () => {
  it('prefetch 0: while A runs a long task, every short task published after it runs on B', async () => {
    const r = await fairScenario(url, { prefetchA: 0 });
    expect(r).toEqual({ shortsOnA: 0, shortsOnB: 10, maxReservedOnA: 0, maxHeldOnA: 1 });
  });

  it('prefetch 1: A reserves at most one (inspect reserved ≤ prefetch); B runs the rest', async () => {
    const r = await fairScenario(url, { prefetchA: 1 });
    expect(r.maxReservedOnA).toBeLessThanOrEqual(1);
    expect(r.maxHeldOnA).toBeLessThanOrEqual(2);
    expect(r.shortsOnA + r.shortsOnB).toBe(10);
    expect(r.shortsOnB).toBeGreaterThanOrEqual(9);
  });
});
