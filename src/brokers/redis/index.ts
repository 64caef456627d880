import type { Transport, TransportOptions } from '../transport.js';
import { redactUrl } from '../url.js';
import { RedisTransport } from './transport.js';
import { parseRedisUrl } from './url.js';

/**
 * The Redis broker: `redis://`, `rediss://`, `redis+sentinel://`, `redis+cluster://` (see `url.ts`
 * for the forms, `keys.ts` for the kombu-compatible layout, `settings.ts` for the options).
 * Creates the transport without connecting.
 *
 * @example
 * const transport = createTransport(new URL('redis://127.0.0.1:6379/0?global_keyprefix=app1:'), {});
 */
export function createTransport(url: URL, options: TransportOptions): Transport {
  return new RedisTransport(parseRedisUrl(url, 'broker'), redactUrl(url.href), options);
}

export { RedisTransport } from './transport.js';
export type { RedisEndpoint } from './url.js';
export { parseRedisUrl } from './url.js';
