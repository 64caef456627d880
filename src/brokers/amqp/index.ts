import type { Transport, TransportOptions } from '../transport.js';
import { redactUrl } from '../url.js';
import { resolveAmqpSettings } from './settings.js';
import { AmqpTransport } from './transport.js';

/**
 * The RabbitMQ broker: `amqp://user:pass@host:5672/vhost` and `amqps://…` (TLS). The vhost is the
 * URL-decoded path (empty or `//` is `/`, as in kombu); `?hosts=h2:5672,h3:5672` lists other cluster
 * nodes to fail over to on connect. See `settings.ts` for `brokerOptions` (per-queue opt-in
 * arguments, heartbeat, backlog), `topology.ts` for the declarations. Creates the transport without
 * connecting.
 *
 * @example
 * const transport = createTransport(new URL('amqp://guest:guest@127.0.0.1:5672/app'), {
 *   options: { queues: { 'orders.*': { maxPriority: 9 } } },
 * });
 */
export function createTransport(url: URL, options: TransportOptions): Transport {
  return new AmqpTransport(resolveAmqpSettings(url, options.options), redactUrl(url.href), options);
}

export type { AmqpSettings, QueueOptions } from './settings.js';
export { resolveAmqpSettings } from './settings.js';
export { AmqpTransport } from './transport.js';
