import { ConfigError } from '../../errors.js';
import type { Pool, PoolKind, PoolOptions } from '../pool.js';
import { AsyncPool } from './async.js';

/**
 * Creates a pool by kind. The threads and process pools are loaded lazily, so a worker that only
 * runs on the event loop never loads them.
 */
export async function createPool(kind: PoolKind, options: PoolOptions): Promise<Pool> {
  switch (kind) {
    case 'async':
      return new AsyncPool(options);
    case 'threads':
      return (await import('./threads.js')).createPool(options);
    case 'process':
      return (await import('./process.js')).createPool(options);
    default:
      throw new ConfigError('pool', `expected one of async, threads, process, got '${String(kind)}'`);
  }
}
