import type { Transport } from '../brokers/transport.js';
import type { Duration } from '../duration.js';
import { toMs } from '../duration.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../logging.js';
import { uuid4 } from '../messages/ids.js';
import { Inspect, type InspectOptions } from './inspect.js';
import type { TargetOptions } from './options.js';

export type { InspectOptions, TargetOptions };

import type { ControlRequest } from './protocol.js';
import {
  DEFAULT_TIMEOUT_MS,
  LamportClock,
  PIDBOX_EXCHANGE,
  REPLY_EXCHANGE,
  REVOKE_EXPIRES_MS,
  requestMessage,
} from './protocol.js';
import { ReplyQueue } from './replies.js';

/** One node's answer, keyed by node name: `{"celeriac@host": {"ok": "pong"}}`. */
export type NodeReplies<T = unknown> = Record<string, T>;

/** `{"ok": …}` or `{"error": …}`, the reply of Celery's control commands. */
export type OkReply = { ok: string } | { error: string };

export interface BroadcastOptions extends TargetOptions {
  arguments?: Record<string, unknown>;
  /** Wait for replies (a call) or not (a cast). Default false, as Celery's `broadcast`. */
  reply?: boolean;
}

export interface CommandOptions extends TargetOptions {
  /** Wait for and return the nodes' replies. Default false (Celery's default): resolves `{}` at once. */
  reply?: boolean;
}

export interface RevokeOptions extends CommandOptions {
  /** Also stop the task where it is running (threads/process pools kill it; on the event loop its signal fires). */
  terminate?: boolean;
  /** Signal name for terminate (Celery's; Celeriac workers stop the task whatever the name). Default SIGTERM. */
  signal?: string;
  /** How long the revoke is kept in the broker's store for workers that start later. Default 3 h (Celery's REVOKE_EXPIRES). */
  expires?: Duration;
}

/** What `app.control` needs from the app. */
export interface ControlCore {
  transport(): Promise<Transport>;
  log: Logger;
  /** The client's reply-to id (`threadOid()`). */
  oid: string;
}

/**
 * Remote control of workers, Celery's `app.control`: broadcast commands over the broker's fan-out
 * (`celery.pidbox`) and collect the replies until the timeout or the limit. Works with Celeriac and
 * Python Celery workers alike.
 *
 * @example
 * await app.control.ping();                              // { 'celeriac@host': { ok: 'pong' } }
 * await app.control.inspect({ timeout: '2s' }).active();  // { 'celeriac@host': [ …tasks ] }
 * await app.control.revoke(id, { terminate: true });
 * await app.control.rateLimit('tasks.add', '10/s', { reply: true });
 */
export class Control {
  readonly clock = new LamportClock();
  readonly #core: ControlCore;
  readonly #replies: ReplyQueue;

  /** @internal use `app.control`. */
  constructor(core: ControlCore) {
    this.#core = core;
    this.#replies = new ReplyQueue(
      async () => {
        const fanout = (await core.transport()).fanout;
        if (!fanout)
          throw new ConfigError('broker', 'this broker has no fan-out: remote control is not available');
        return fanout;
      },
      core.oid,
      (err) => core.log.warn({ err: err.message }, 'malformed control reply ignored'),
    );
  }

  /**
   * Sends a command to the workers. With `reply: true`, resolves with every reply received before
   * the timeout (or the limit), each `{"<node>": <reply>}`, as Celery's `broadcast`; otherwise `[]`.
   */
  async broadcast(command: string, options: BroadcastOptions = {}): Promise<Array<NodeReplies>> {
    if (typeof command !== 'string' || !command) throw new ConfigError('command', 'expected a command name');
    const destination = destinationOf(options.destination);
    const timeoutMs = toMs(options.timeout ?? DEFAULT_TIMEOUT_MS, 'timeout');
    const limit = options.limit ?? (destination ? destination.length : undefined);
    if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1))
      throw new ConfigError('limit', `expected an integer ≥ 1, got ${limit}`);
    const transport = await this.#core.transport();
    const fanout = transport.fanout;
    if (!fanout)
      throw new ConfigError(
        'broker',
        `the ${transport.kind} broker has no fan-out: remote control is not available`,
      );
    const request: ControlRequest = {
      method: command,
      arguments: options.arguments ?? {},
      destination,
      pattern: options.pattern ?? null,
      matcher: options.matcher ?? null,
    };
    const priority = transport.defaultPriority ?? 0;
    if (!options.reply) {
      await fanout.publish(
        PIDBOX_EXCHANGE,
        '',
        requestMessage(request, { clock: this.clock.forward(), timeoutMs: 0, priority }),
      );
      return [];
    }
    const ticket = uuid4();
    request.ticket = ticket;
    request.reply_to = { exchange: REPLY_EXCHANGE, routing_key: this.#replies.oid };
    const replies: NodeReplies[] = [];
    let finish: () => void = () => {};
    const done = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const release = await this.#replies.listen(ticket, (reply) => {
      this.clock.adjust(reply.clock);
      if (reply.expires !== null && Date.now() / 1000 > reply.expires) return;
      replies.push(reply.body);
      if (limit !== undefined && replies.length >= limit) finish();
    });
    const timer = setTimeout(finish, timeoutMs);
    try {
      await fanout.publish(
        PIDBOX_EXCHANGE,
        '',
        requestMessage(request, { clock: this.clock.forward(), timeoutMs, priority }),
      );
      await done;
    } finally {
      clearTimeout(timer);
      await release();
    }
    return replies;
  }

  /** Sends a command and merges the replies by node name (`{}` for a cast). */
  async call<T = unknown>(
    command: string,
    args: Record<string, unknown>,
    options: CommandOptions = {},
  ): Promise<NodeReplies<T>> {
    const replies = await this.broadcast(command, { ...options, arguments: args });
    return Object.assign({}, ...replies) as NodeReplies<T>;
  }

  /** Inspection commands (active, reserved, stats…) with these targets. */
  inspect(options: InspectOptions = {}): Inspect {
    return new Inspect((method, args) => this.call(method, args, { ...options, reply: true }));
  }

  /** `ping`: every node that answers in time. */
  ping(options: TargetOptions = {}): Promise<NodeReplies<OkReply>> {
    return this.call('ping', {}, { ...options, reply: true });
  }

  /**
   * Revokes tasks: recorded in the broker's store (with an expiry) so that no worker, not even one
   * started later, runs them; and broadcast so running workers drop them now (and, with
   * `terminate`, stop them where they run).
   */
  async revoke(
    taskId: string | readonly string[],
    options: RevokeOptions = {},
  ): Promise<NodeReplies<OkReply>> {
    const ids = typeof taskId === 'string' ? [taskId] : [...taskId];
    if (!ids.length || ids.some((id) => typeof id !== 'string' || !id))
      throw new ConfigError('taskId', 'expected a task id or a list of task ids');
    const expiresMs = toMs(options.expires ?? REVOKE_EXPIRES_MS, 'expires');
    const transport = await this.#core.transport();
    if (transport.revocations) await transport.revocations.add(ids, Date.now() + expiresMs);
    else
      this.#core.log.warn(
        { broker: transport.kind },
        'this broker keeps no revocations: only running workers learn of the revoke',
      );
    const { terminate = false, signal = 'SIGTERM', expires: _e, ...rest } = options;
    return this.call(
      'revoke',
      { task_id: typeof taskId === 'string' ? taskId : ids, terminate, signal },
      rest,
    );
  }

  /** `rate_limit`: a task's per-worker rate (`'10/s'`, `'5/m'`, a number per second; null/0 removes it). */
  rateLimit(
    task: string,
    rate: string | number | null,
    options: CommandOptions = {},
  ): Promise<NodeReplies<OkReply>> {
    return this.call('rate_limit', { task_name: task, rate_limit: rate }, options);
  }

  /** `time_limit`: a task's soft and hard limits, in seconds as Celery's command (null: none). */
  timeLimit(
    task: string,
    limits: { soft?: number | null; hard?: number | null },
    options: CommandOptions = {},
  ): Promise<NodeReplies<OkReply>> {
    return this.call(
      'time_limit',
      { task_name: task, soft: limits.soft ?? null, hard: limits.hard ?? null },
      options,
    );
  }

  /** `pool_grow`: n more tasks at once on each node's default pool. */
  poolGrow(n = 1, options: CommandOptions = {}): Promise<NodeReplies<OkReply>> {
    return this.call('pool_grow', { n }, options);
  }

  /** `pool_shrink`: n fewer tasks at once (never below 1). */
  poolShrink(n = 1, options: CommandOptions = {}): Promise<NodeReplies<OkReply>> {
    return this.call('pool_shrink', { n }, options);
  }

  /** `add_consumer`: nodes start consuming `queue`. */
  addConsumer(queue: string, options: CommandOptions = {}): Promise<NodeReplies<OkReply>> {
    return this.call('add_consumer', { queue }, options);
  }

  /** `cancel_consumer`: nodes stop consuming `queue`. */
  cancelConsumer(queue: string, options: CommandOptions = {}): Promise<NodeReplies<OkReply>> {
    return this.call('cancel_consumer', { queue }, options);
  }

  /** `shutdown`: nodes stop gracefully. Workers send no reply (as Celery's), so this is a cast. */
  async shutdown(options: Omit<TargetOptions, 'timeout' | 'limit'> = {}): Promise<void> {
    await this.broadcast('shutdown', { ...options, reply: false });
  }
}

function destinationOf(value: string | readonly string[] | undefined): string[] | null {
  if (value === undefined) return null;
  const list = typeof value === 'string' ? [value] : [...value];
  if (list.some((d) => typeof d !== 'string' || !d))
    throw new ConfigError('destination', 'expected node names, e.g. celeriac@host');
  return list.length ? list : null;
}
