import type { Transport } from '../brokers/transport.js';
import type { Logger } from '../logging.js';
import type { WireMessage } from '../messages/types.js';
import type { CommandContext } from './commands.js';
import { commandFor } from './commands.js';
import type { ReceivedRequest } from './protocol.js';
import {
  isFor,
  LamportClock,
  PIDBOX_EXCHANGE,
  parseRequest,
  REVOKE_EXPIRES_MS,
  replyMessage,
} from './protocol.js';
import type { ControlTarget } from './target.js';

/**
 * A worker's pidbox node: listens on the fanout exchange `celery.pidbox` (what Celery's worker
 * consumes as the queue `<nodename>.celery.pidbox`), runs the commands meant for this node
 * (destination, pattern/matcher, or everyone) and replies `{"<nodename>": <reply>}` to the
 * request's `reply_to`. Requests whose `expires` header has passed are ignored, as are malformed
 * ones (logged): nothing a client sends can stop the worker, except `shutdown`.
 *
 * @example
 * const mailbox = await Mailbox.start(worker, transport, log);
 * // …
 * await mailbox.stop();
 */
export class Mailbox {
  readonly clock = new LamportClock();
  readonly #target: ControlTarget;
  readonly #transport: Transport;
  readonly #log: Logger;
  #unsubscribe: (() => Promise<void>) | null = null;
  #stopped = false;

  private constructor(target: ControlTarget, transport: Transport, log: Logger) {
    this.#target = target;
    this.#transport = transport;
    this.#log = log.child({ component: 'mailbox' });
  }

  /**
   * Starts listening. Never throws: a transport without fan-out, or a subscription that fails, is
   * logged and leaves the worker running without remote control.
   */
  static async start(target: ControlTarget, transport: Transport, log: Logger): Promise<Mailbox> {
    const mailbox = new Mailbox(target, transport, log);
    const fanout = transport.fanout;
    if (!fanout) {
      mailbox.#log.warn(
        { broker: transport.kind },
        'this broker has no fan-out: remote control (inspect, revoke broadcasts, rate_limit…) is off',
      );
      return mailbox;
    }
    try {
      mailbox.#unsubscribe = await fanout.subscribe(
        PIDBOX_EXCHANGE,
        '',
        (message) => mailbox.#onMessage(message),
        { node: mailbox.#target.hostname },
      );
    } catch (err) {
      mailbox.#log.error({ err }, 'could not listen for remote control commands: remote control is off');
    }
    return mailbox;
  }

  /** True while commands are received. */
  get listening(): boolean {
    return this.#unsubscribe !== null && !this.#stopped;
  }

  /** Stops listening. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const unsubscribe = this.#unsubscribe;
    this.#unsubscribe = null;
    await unsubscribe?.().catch((err: unknown) =>
      this.#log.warn({ err }, 'could not stop listening cleanly'),
    );
  }

  #onMessage(message: WireMessage): void {
    if (this.#stopped) return;
    this.clock.forward();
    let request: ReceivedRequest;
    try {
      request = parseRequest(message);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'malformed control message ignored');
      return;
    }
    this.clock.adjust(request.clock);
    if (!isFor(request, this.#target.hostname)) return;
    if (request.expires !== null && Date.now() / 1000 > request.expires) {
      this.#log.debug({ method: request.method }, 'expired control request ignored');
      return;
    }
    void this.#dispatch(request);
  }

  async #dispatch(request: ReceivedRequest): Promise<void> {
    const { method } = request;
    this.#log.debug({ method, arguments: request.arguments, ticket: request.ticket }, 'control command');
    const handler = commandFor(method);
    const asked: { shutdown: string | null } = { shutdown: null };
    let reply: unknown;
    if (!handler) {
      this.#log.error({ method }, 'no such control command');
      reply = { error: `No such control command: ${method}` };
    } else {
      const ctx: CommandContext = {
        target: this.#target,
        clock: this.clock,
        log: this.#log,
        shutdown: (reason) => {
          asked.shutdown = reason;
        },
      };
      try {
        reply = await handler(ctx, request.arguments);
        if (method === 'revoke' || method === 'terminate') this.#remember(request.arguments.task_id);
      } catch (err) {
        this.#log.error({ err, method }, 'control command error');
        reply = { error: err instanceof Error ? err.message : String(err) };
      }
    }
    if (asked.shutdown !== null) {
      // Celery's handler raises SystemExit: no reply is sent.
      this.#log.warn({ reason: asked.shutdown }, 'shutdown requested by remote control');
      void this.#target.stop().catch((err: unknown) => this.#log.error({ err }, 'shutdown failed'));
      return;
    }
    if (request.ticket === undefined || !request.reply_to) return;
    const fanout = this.#transport.fanout;
    if (!fanout) return;
    const message = replyMessage(this.#target.hostname, reply ?? null, {
      ticket: request.ticket,
      clock: this.clock.forward(),
      priority: this.#transport.defaultPriority ?? 0,
    });
    try {
      await fanout.publish(request.reply_to.exchange, request.reply_to.routing_key, message);
    } catch (err) {
      this.#log.warn({ err, method }, 'could not send a control reply');
    }
  }

  /** A revoke received by broadcast (from Python too) is kept in the broker's store for workers that start later. */
  #remember(taskId: unknown): void {
    const store = this.#transport.revocations;
    const ids =
      typeof taskId === 'string'
        ? [taskId]
        : Array.isArray(taskId)
          ? taskId.filter((v) => typeof v === 'string')
          : [];
    if (!store || !ids.length) return;
    store
      .add(ids, Date.now() + REVOKE_EXPIRES_MS)
      .catch((err: unknown) => this.#log.warn({ err }, 'could not record revoked ids in the broker'));
  }
}
