import { parseRedisUrl } from '../../brokers/redis/url.js';
import { redactUrl } from '../../brokers/url.js';
import type { ResultSink } from '../sink.js';
import { RedisResultSink } from './sink.js';

/**
 * Celery's Redis result backend (`redis://`, `rediss://`, `redis+sentinel://`, `redis+cluster://`,
 * same URL forms as the broker, see `brokers/redis/url.ts`). Creates the sink without connecting.
 *
 * @example
 * const sink = createResultSink(new URL('redis://127.0.0.1:6379/1'), {});
 */
export function createResultSink(url: URL, _options: { options?: Record<string, unknown> } = {}): ResultSink {
  return new RedisResultSink(parseRedisUrl(url, 'results'), redactUrl(url.href));
}

export { RedisResultSink, TASK_KEYPREFIX } from './sink.js';
