/**
 * What the rpc:// result sink needs to know from the AMQP broker in the same process:
 *
 * - where a task's result goes: the `reply_to` of the message that carried it (Celery's rpc backend
 *   publishes to the sender's reply queue). The transport records it for every task delivery it
 *   hands out; the first one recorded for a task id wins, so a retry re-published by a worker (with
 *   the worker's own reply_to) still reports to the original sender. Bounded: the oldest entries go
 *   first beyond `MAX_ROUTES`.
 * - a connection to share: the live AMQP transports of this process (an `rpc://` URL has no host).
 */
import type { Connection } from 'rabbitmq-client';

const MAX_ROUTES = 100_000;
const routes = new Map<string, string>();

/** Records the reply queue of a task (first one wins). */
export function rememberReplyTo(taskId: string, replyTo: string): void {
  if (routes.has(taskId)) return;
  routes.set(taskId, replyTo);
  if (routes.size > MAX_ROUTES) {
    const oldest = routes.keys().next().value;
    if (oldest !== undefined) routes.delete(oldest);
  }
}

/** The reply queue recorded for a task, if a delivery of it came through this process. */
export function replyToOf(taskId: string): string | undefined {
  return routes.get(taskId);
}

/** Forgets a task's route (its result is final). */
export function forgetReplyTo(taskId: string): void {
  routes.delete(taskId);
}

/** A connection the rpc sink may borrow: a live AMQP transport's. */
export interface ConnectionSource {
  readonly label: string;
  conn(): Connection;
  readonly closed: boolean;
}

const sources = new Set<ConnectionSource>();

export function registerSource(source: ConnectionSource): void {
  sources.add(source);
}

export function unregisterSource(source: ConnectionSource): void {
  sources.delete(source);
}

/** The first live AMQP transport of this process, if any. */
export function sharedSource(): ConnectionSource | undefined {
  for (const s of sources) if (!s.closed) return s;
  return undefined;
}
