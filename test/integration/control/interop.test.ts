import { beforeAll } from 'vitest';
import { describeControlInterop } from '../../helpers/control-scenarios.js';
import { inspector, REDIS_HOST, REDIS_PORT } from '../redis/helpers.js';

/**
 * Remote control across languages over Redis db 15 (flushed at the start): the scenarios shared
 * with AMQP (test/helpers/control-scenarios.ts), Python's `celery inspect` / `celery control`
 * against a Celeriac worker, and `app.control` / `celeriac inspect|control` against the Python peer
 * worker (../shared/celery-wire/peer.py). Fails, never skips, when Python Celery or Redis is missing.
 */
const DB = 15;
const URL_ = `redis://${REDIS_HOST}:${REDIS_PORT}/${DB}`;

beforeAll(async () => {
  const redis = inspector(DB);
  await redis.connect();
  await redis.flushdb();
  await redis.quit();
});

describeControlInterop({
  label: 'Redis',
  urls: () => ({ broker: URL_, results: URL_, brokerOptions: { pollInterval: 50 } }),
});
