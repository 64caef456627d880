import type { ResultSink, ResultSinkOptions } from '../sink.js';
import { RpcResultSink } from './sink.js';

/**
 * Celery's rpc:// result backend over AMQP (see `sink.ts` for what it does and how it differs from
 * a stored backend). `rpc://` shares the connection of the app's amqp:// broker (`broker`, which the
 * app passes); `rpc://user:pass@host:5672/vhost` opens its own. Options: `expires` (ms, the reply
 * queue's `x-expires`; default one day, Celery's `result_expires`). Creates the sink without
 * connecting.
 *
 * @example
 * const sink = createResultSink(new URL('rpc://'), { broker: () => app.transport() });
 */
export function createResultSink(url: URL, options: ResultSinkOptions = {}): ResultSink {
  return new RpcResultSink(url, options.options ?? {}, options.broker);
}

export { RpcResultSink, replyBody } from './sink.js';
