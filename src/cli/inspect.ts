import type { Command } from 'commander';
import type { Celeriac } from '../index.js';
import { openApp } from './connect.js';
import type { CliIO } from './io.js';
import { CommandFailed } from './io.js';
import type { ConnectionFlags } from './options.js';
import { connectionOptions, list, seconds } from './options.js';
import { clip, table } from './table.js';

/** Flags shared by `celeriac inspect …` and `celeriac control …`. */
export interface RemoteFlags extends ConnectionFlags {
  json?: boolean;
  destination?: string[];
  /** ms (the flag takes seconds, as Celery's `--timeout`). */
  timeout?: number;
}

/** Adds `--json`, `-d/--destination` and `-t/--timeout` to a remote-control command. */
export function remoteOptions(command: Command): Command {
  return connectionOptions(command)
    .option('-j, --json', 'print the replies as one JSON object keyed by node name')
    .option('-d, --destination <nodes>', 'only these nodes (comma-separated names, e.g. celeriac@web1)', list)
    .option('-t, --timeout <seconds>', 'how long to wait for replies (default: 1)', seconds);
}

/** Target options for `app.control` from the flags. */
export function targetOf(flags: RemoteFlags): { destination?: string[]; timeout: number } {
  return { ...(flags.destination ? { destination: flags.destination } : {}), timeout: flags.timeout ?? 1000 };
}

/** Opens the app from the flags, runs `fn`, closes the app. */
export async function withApp<T>(
  flags: RemoteFlags,
  command: string,
  fn: (app: Celeriac) => Promise<T>,
): Promise<T> {
  const app = await openApp(flags, { command, results: 'ignored' });
  try {
    return await fn(app);
  } finally {
    await app.close();
  }
}

/** Prints replies (or fails when none came), as JSON or with `render`. */
export function printReplies(
  io: CliIO,
  flags: RemoteFlags,
  replies: Record<string, unknown>,
  render: (replies: Record<string, unknown>) => string,
): number {
  const nodes = Object.keys(replies);
  if (!nodes.length) {
    const wait = (flags.timeout ?? 1000) / 1000;
    throw new CommandFailed(
      `no nodes replied within ${wait}s${flags.destination ? ` (destination: ${flags.destination.join(', ')})` : ''}`,
    );
  }
  if (flags.json) io.stdout.write(`${JSON.stringify(replies)}\n`);
  else io.stdout.write(render(replies));
  io.stderr.write(`${nodes.length} node${nodes.length === 1 ? '' : 's'} replied\n`);
  return 0;
}

type Row = Array<string | number>;

function record(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function items(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

const json = (v: unknown): string => clip(JSON.stringify(v) ?? 'null', 40);
const str = (v: unknown): string => (v === null || v === undefined ? '–' : String(v));

/** One row per task, or one `– none –` row for a node without any. */
function perTask(
  replies: Record<string, unknown>,
  head: string[],
  row: (task: Record<string, unknown>) => Row,
): string {
  const rows: Row[] = [];
  for (const [node, reply] of Object.entries(replies)) {
    const tasks = items(reply);
    if (!tasks.length) rows.push([node, '– none –', ...head.slice(2).map(() => '')]);
    for (const t of tasks) rows.push([node, ...row(record(t))]);
  }
  return table(head, rows);
}

function started(t: Record<string, unknown>): string {
  return typeof t.time_start === 'number' ? new Date(t.time_start * 1000).toISOString() : '–';
}

function errorOr(reply: unknown, ok: (r: unknown) => string): string {
  const r = record(reply);
  return 'error' in r ? `error: ${str(r.error)}` : ok(reply);
}

const INSPECT: Record<
  string,
  {
    description: string;
    args?: string;
    run: (app: Celeriac, f: RemoteFlags, args: string[]) => Promise<Record<string, unknown>>;
    render: (r: Record<string, unknown>) => string;
  }
> = {
  ping: {
    description: 'ping workers',
    run: (app, f) => app.control.ping(targetOf(f)),
    render: (r) =>
      table(
        ['node', 'reply'],
        Object.entries(r).map(([n, v]) => [n, errorOr(v, (x) => str(record(x).ok))]),
      ),
  },
  active: {
    description: 'tasks running now',
    run: (app, f) => app.control.inspect(targetOf(f)).active(),
    render: (r) =>
      perTask(r, ['node', 'id', 'task', 'args', 'kwargs', 'started'], (t) => [
        str(t.id),
        str(t.name),
        json(t.args),
        json(t.kwargs),
        started(t),
      ]),
  },
  reserved: {
    description: 'tasks received and not started yet',
    run: (app, f) => app.control.inspect(targetOf(f)).reserved(),
    render: (r) =>
      perTask(r, ['node', 'id', 'task', 'args', 'kwargs'], (t) => [
        str(t.id),
        str(t.name),
        json(t.args),
        json(t.kwargs),
      ]),
  },
  scheduled: {
    description: 'eta/countdown tasks held until due',
    run: (app, f) => app.control.inspect(targetOf(f)).scheduled(),
    render: (r) =>
      perTask(r, ['node', 'id', 'task', 'eta', 'priority'], (s) => {
        const req = record(s.request);
        return [str(req.id), str(req.name), str(s.eta), str(s.priority)];
      }),
  },
  registered: {
    description: 'registered tasks',
    run: (app, f) => app.control.inspect(targetOf(f)).registered(),
    render: (r) =>
      table(
        ['node', 'task'],
        Object.entries(r).flatMap(([n, v]) => items(v).map((t) => [n, str(t)])),
      ),
  },
  stats: {
    description: 'worker statistics',
    run: (app, f) => app.control.inspect(targetOf(f)).stats(),
    render: (r) =>
      table(
        ['node', 'pid', 'pool', 'concurrency', 'uptime (s)', 'prefetch', 'tasks done'],
        Object.entries(r).map(([n, v]) => {
          const s = record(v);
          const pool = record(s.pool);
          const done = Object.values(record(s.total)).reduce<number>(
            (a, b) => a + (typeof b === 'number' ? b : 0),
            0,
          );
          const counts = record(s.counts);
          const finished =
            typeof counts.succeeded === 'number'
              ? Number(counts.succeeded) + Number(counts.failed ?? 0)
              : done;
          return [
            n,
            str(s.pid),
            str(pool.implementation),
            str(pool['max-concurrency']),
            str(s.uptime),
            str(s.prefetch_count),
            finished,
          ];
        }),
      ),
  },
  query_task: {
    description: 'where tasks are (active, reserved, scheduled)',
    args: '<ids...>',
    run: (app, f, ids) => app.control.inspect(targetOf(f)).queryTask(ids),
    render: (r) =>
      table(
        ['node', 'id', 'state', 'task'],
        Object.entries(r).flatMap(([n, v]) =>
          Object.entries(record(v)).map(([id, entry]) => {
            const [state, info] = items(entry);
            return [n, id, str(state), str(record(info).name)];
          }),
        ),
      ),
  },
  revoked: {
    description: 'task ids known as revoked',
    run: (app, f) => app.control.inspect(targetOf(f)).revoked(),
    render: (r) =>
      table(
        ['node', 'revoked id'],
        Object.entries(r).flatMap(([n, v]) => items(v).map((id) => [n, str(id)])),
      ),
  },
};

/** `celeriac inspect ping|active|reserved|scheduled|registered|stats|query_task|revoked`: Celery's `celery inspect`. */
export function registerInspect(program: Command, io: CliIO, done: (code: number) => void): void {
  const inspect = program
    .command('inspect')
    .description('ask workers (Celeriac or Python Celery) what they are doing, over the broker');
  for (const [name, spec] of Object.entries(INSPECT)) {
    const sub = remoteOptions(inspect.command(name).description(spec.description));
    if (spec.args) sub.argument(spec.args);
    sub.action(async (...params: unknown[]) => {
      const flags = params[spec.args ? 1 : 0] as RemoteFlags;
      const args = spec.args ? (params[0] as string[]) : [];
      done(
        await withApp(flags, `inspect ${name}`, async (app) =>
          printReplies(io, flags, await spec.run(app, flags, args), spec.render),
        ),
      );
    });
  }
}
