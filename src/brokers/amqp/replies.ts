/**
 * What an rpc:// result sink borrows from the app's AMQP broker transport (`ReplyPort`, which
 * `AmqpTransport` implements; the app hands its transport to the sink factory, see
 * `ResultSinkOptions.broker`):
 *
 * - its connection (an `rpc://` URL without a host shares the broker's, as Celery's rpc backend);
 * - where each task it delivered wants its result: the `reply_to` of the task's latest delivery
 *   (Celery's rpc backend publishes to `request.reply_to`). A retry keeps the original message's
 *   reply_to (`worker/follow-ups.ts`), so the latest delivery is right even when a retry runs in
 *   another process.
 */
import type { Connection } from 'rabbitmq-client';

const MAX_ROUTES = 100_000;

/** taskId → reply_to of its latest delivery through one transport. Bounded: the oldest go first. */
export class ReplyRoutes {
  private readonly routes = new Map<string, string>();

  /** Records the reply queue of a task delivery (a later delivery of the same task replaces it). */
  remember(taskId: string, replyTo: string): void {
    this.routes.delete(taskId);
    this.routes.set(taskId, replyTo);
    if (this.routes.size > MAX_ROUTES) {
      const oldest = this.routes.keys().next().value;
      if (oldest !== undefined) this.routes.delete(oldest);
    }
  }

  /** The reply queue of a task this transport delivered, if any. */
  replyTo(taskId: string): string | undefined {
    return this.routes.get(taskId);
  }

  /** Forgets a task's route (its result is final). */
  forget(taskId: string): void {
    this.routes.delete(taskId);
  }
}

/** The part of an AMQP broker transport an rpc:// result sink uses. */
export interface ReplyPort {
  /** The transport's connection (opened on first use; throws ClosedError once the transport is closed). */
  conn(): Connection;
  /** reply_to of the tasks this transport delivered. */
  readonly replies: ReplyRoutes;
  /** Which RabbitMQ vhost: sinks of one process on the same vhost share one reply-queue consumer. */
  readonly settings: { readonly hostname: string; readonly port: number; readonly vhost: string };
}

/** The transport as a ReplyPort, or undefined when it is not an AMQP transport. */
export function asReplyPort(transport: unknown): ReplyPort | undefined {
  const t = transport as Partial<ReplyPort> | null | undefined;
  if (typeof t?.conn !== 'function' || typeof t.replies?.replyTo !== 'function' || !t.settings)
    return undefined;
  return t as ReplyPort;
}
