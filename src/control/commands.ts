/**
 * The remote-control commands a Celeriac worker answers, with Celery's names, arguments and reply
 * shapes (celery/worker/control.py in Celery 5.2.6). A handler returns the reply (sent only when the
 * request wants one); what it throws becomes `{"error": "<message>"}`, as kombu's Node does.
 */
import type { LamportClock } from './protocol.js';
import type { ControlTarget } from './target.js';

/** What a handler gets besides its arguments. */
export interface CommandContext {
  target: ControlTarget;
  clock: LamportClock;
  log: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
  /** Set by `shutdown`: the mailbox sends no reply (Celery's raises SystemExit) and stops the worker. */
  shutdown(reason: string): void;
}

export type CommandHandler = (ctx: CommandContext, args: Record<string, unknown>) => unknown;

const ok = (value: unknown) => ({ ok: value });
const nok = (value: unknown) => ({ error: value });

/** `task_id` may be one id or a list (Celery's maybe_list). */
function ids(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return [];
}

function num(value: unknown, fallback: number): number {
  const n = typeof value === 'string' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) ? n : fallback;
}

function optionalSeconds(value: unknown): number | null {
  if (value === null || value === undefined || value === '') return null;
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0)
    throw new Error(`expected seconds, got ${JSON.stringify(value)}`);
  return n;
}

function taskNames(target: ControlTarget): Set<string> {
  return new Set(target.registeredTasks().map((entry) => entry.split(' ')[0] as string));
}

/** Celery's Request.info() has no `eta`; the worker's entries may. */
function info(entry: object): object {
  const { eta: _eta, ...rest } = entry as Record<string, unknown>;
  return rest;
}

function revoke(ctx: CommandContext, args: Record<string, unknown>): unknown {
  const list = [...new Set(ids(args.task_id))];
  const terminate = args.terminate === true || args.terminate === 'true' || args.terminate === 1;
  const terminated = ctx.target.revoke(list, { terminate });
  if (terminate) {
    if (!terminated.length) return ok('terminate: tasks unknown');
    ctx.log.info({ tasks: terminated, signal: args.signal ?? 'SIGTERM' }, 'terminating revoked tasks');
    return ok(`terminate: ${terminated.join(', ')}`);
  }
  ctx.log.info({ tasks: list }, 'tasks flagged as revoked');
  return ok(`tasks ${list.join(', ')} flagged as revoked`);
}

/** Command name → handler. Aliases as in Celery (`dump_active`…). */
export const COMMANDS: Readonly<Record<string, CommandHandler>> = {
  ping: () => ok('pong'),
  clock: (ctx) => ({ clock: ctx.clock.value }),
  active: (ctx) => ctx.target.activeTasks().map(info),
  reserved: (ctx) => ctx.target.reservedTasks().map(info),
  scheduled: (ctx) =>
    ctx.target.scheduledTasks().map((s) => ({ eta: s.eta, priority: s.priority, request: info(s.request) })),
  registered: (ctx) => ctx.target.registeredTasks(),
  stats: (ctx) => ctx.target.statsInfo(),
  query_task: (ctx, args) => {
    const out: Record<string, [string, object]> = {};
    for (const [id, [state, entry]] of Object.entries(ctx.target.queryTask(ids(args.ids))))
      out[id] = [state, info(entry)];
    return out;
  },
  revoked: (ctx) => ctx.target.revokedIds(),
  active_queues: (ctx) =>
    ctx.target.queues.map((name) => ({
      name,
      exchange: { name, type: 'direct', durable: true, auto_delete: false, arguments: null },
      routing_key: name,
      durable: true,
      exclusive: false,
      auto_delete: false,
      no_ack: false,
      alias: null,
      bindings: [],
      queue_arguments: null,
      binding_arguments: null,
      consumer_arguments: null,
      expires: null,
      message_ttl: null,
      max_length: null,
      max_length_bytes: null,
      max_priority: null,
    })),
  // A starting Python worker's mingle: answer with no revokes of ours (they live in the broker's store).
  hello: (ctx, args) =>
    args.from_node === ctx.target.hostname ? null : { revoked: {}, clock: ctx.clock.forward() },
  revoke,
  terminate: (ctx, args) => revoke(ctx, { ...args, terminate: true }),
  rate_limit: (ctx, args) => {
    const task = String(args.task_name ?? '');
    const rate = args.rate_limit;
    if (!taskNames(ctx.target).has(task)) return nok('unknown task');
    const value = rate === null || rate === undefined ? null : typeof rate === 'number' ? rate : String(rate);
    try {
      ctx.target.setRateLimit(task, value);
    } catch (err) {
      return nok(`Invalid rate limit string: ${(err as Error).message}`);
    }
    if (!value || value === '0') {
      ctx.log.info({ task }, 'rate limits disabled');
      return ok('rate limit disabled successfully');
    }
    ctx.log.info({ task, rate: value }, 'new rate limit');
    return ok('new rate limit set successfully');
  },
  time_limit: (ctx, args) => {
    const task = String(args.task_name ?? '');
    if (!taskNames(ctx.target).has(task)) return nok('unknown task');
    const soft = optionalSeconds(args.soft);
    const hard = optionalSeconds(args.hard);
    ctx.target.setTimeLimit(task, soft, hard);
    ctx.log.info({ task, soft, hard }, 'new time limits');
    return ok('time limits set successfully');
  },
  pool_grow: (ctx, args) => {
    ctx.target.resize(ctx.target.concurrency + Math.max(0, Math.floor(num(args.n, 1))));
    return ok('pool will grow');
  },
  pool_shrink: (ctx, args) => {
    ctx.target.resize(ctx.target.concurrency - Math.max(0, Math.floor(num(args.n, 1))));
    return ok('pool will shrink');
  },
  add_consumer: async (ctx, args) => {
    const queue = args.queue;
    if (typeof queue !== 'string' || queue === '') return nok("'queue' must be a queue name");
    await ctx.target.addConsumer(queue);
    return ok(`add consumer ${queue}`);
  },
  cancel_consumer: async (ctx, args) => {
    const queue = args.queue;
    if (typeof queue !== 'string' || queue === '') return nok("'queue' must be a queue name");
    await ctx.target.cancelConsumer(queue);
    return ok(`no longer consuming from ${queue}`);
  },
  shutdown: (ctx, args) => {
    const msg = typeof args.msg === 'string' ? args.msg : 'Got shutdown from remote';
    ctx.shutdown(msg);
    return undefined;
  },
};

export const ALIASES: Readonly<Record<string, string>> = {
  dump_active: 'active',
  dump_reserved: 'reserved',
  dump_schedule: 'scheduled',
  dump_tasks: 'registered',
  dump_revoked: 'revoked',
};

/** The handler of a command name, or undefined. */
export function commandFor(method: string): CommandHandler | undefined {
  const name = ALIASES[method] ?? method;
  return Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
}
