import type { Command } from 'commander';
import { Argument, InvalidArgumentError } from 'commander';
import type { Celeriac } from '../index.js';
import type { RemoteFlags } from './inspect.js';
import { printReplies, remoteOptions, targetOf, withApp } from './inspect.js';
import type { CliIO } from './io.js';
import { CommandFailed } from './io.js';
import { integer } from './options.js';
import { table } from './table.js';

interface RevokeFlags extends RemoteFlags {
  terminate?: boolean;
  signal?: string;
}

type Args = Array<string | number | string[] | undefined>;
type Run = (app: Celeriac, flags: RevokeFlags, args: Args) => Promise<Record<string, unknown>>;

function secondsArg(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0)
    throw new InvalidArgumentError('expected seconds ≥ 0.');
  return n;
}

const reply = (f: RemoteFlags) => ({ ...targetOf(f), reply: true });

const CONTROL: Record<string, { description: string; args: Argument[]; run: Run }> = {
  revoke: {
    description:
      'revoke tasks (kept in the broker for workers that start later); --terminate stops running ones',
    args: [new Argument('<ids...>', 'task ids')],
    run: (app, f, [ids]) =>
      app.control.revoke(ids as string[], {
        ...reply(f),
        terminate: f.terminate ?? false,
        ...(f.signal ? { signal: f.signal } : {}),
      }),
  },
  rate_limit: {
    description: "set a task's per-worker rate limit (e.g. 10/s, 5/m; 0 removes it)",
    args: [new Argument('<task>', 'task name'), new Argument('<rate>', 'e.g. 10/s, 5/m, 100/h, 0')],
    run: (app, f, [task, rate]) => app.control.rateLimit(task as string, rate as string, reply(f)),
  },
  time_limit: {
    description: "set a task's soft and hard time limits, in seconds",
    args: [
      new Argument('<task>', 'task name'),
      new Argument('<soft>', 'soft limit, seconds').argParser(secondsArg),
      new Argument('[hard]', 'hard limit, seconds').argParser(secondsArg),
    ],
    run: (app, f, [task, soft, hard]) =>
      app.control.timeLimit(
        task as string,
        { soft: soft as number, hard: (hard as number | undefined) ?? null },
        reply(f),
      ),
  },
  pool_grow: {
    description: 'run n more tasks at once (default 1)',
    args: [new Argument('[n]', 'how many').argParser(integer(1))],
    run: (app, f, [n]) => app.control.poolGrow((n as number | undefined) ?? 1, reply(f)),
  },
  pool_shrink: {
    description: 'run n fewer tasks at once (default 1)',
    args: [new Argument('[n]', 'how many').argParser(integer(1))],
    run: (app, f, [n]) => app.control.poolShrink((n as number | undefined) ?? 1, reply(f)),
  },
  add_consumer: {
    description: 'start consuming a queue',
    args: [new Argument('<queue>', 'queue name')],
    run: (app, f, [queue]) => app.control.addConsumer(queue as string, reply(f)),
  },
  cancel_consumer: {
    description: 'stop consuming a queue',
    args: [new Argument('<queue>', 'queue name')],
    run: (app, f, [queue]) => app.control.cancelConsumer(queue as string, reply(f)),
  },
};

function render(replies: Record<string, unknown>): string {
  return table(
    ['node', 'reply'],
    Object.entries(replies).map(([node, r]) => {
      const o = (typeof r === 'object' && r !== null ? r : {}) as { ok?: unknown; error?: unknown };
      return [node, 'error' in o ? `error: ${String(o.error)}` : String(o.ok ?? JSON.stringify(r))];
    }),
  );
}

/** `celeriac control revoke|rate_limit|time_limit|shutdown|pool_grow|pool_shrink|add_consumer|cancel_consumer`: Celery's `celery control`. */
export function registerControl(program: Command, io: CliIO, done: (code: number) => void): void {
  const control = program
    .command('control')
    .description('tell workers (Celeriac or Python Celery) what to do, over the broker');
  for (const [name, spec] of Object.entries(CONTROL)) {
    const sub = remoteOptions(control.command(name).description(spec.description));
    for (const a of spec.args) sub.addArgument(a);
    if (name === 'revoke')
      sub
        .option('--terminate', 'also stop the tasks where they run')
        .option(
          '-s, --signal <name>',
          'signal name for --terminate (Celery workers use it; default SIGTERM)',
        );
    sub.action(async (...params: unknown[]) => {
      const flags = params[spec.args.length] as RevokeFlags;
      const args = params.slice(0, spec.args.length) as Args;
      done(
        await withApp(flags, `control ${name}`, async (app) => {
          const replies = await spec.run(app, flags, args);
          const code = printReplies(io, flags, replies, render);
          const failed = Object.values(replies).some(
            (r) => typeof r === 'object' && r !== null && 'error' in r,
          );
          if (failed) throw new CommandFailed(`${name}: some nodes replied with an error`);
          return code;
        }),
      );
    });
  }
  remoteOptions(
    control.command('shutdown').description('stop workers gracefully (they send no reply, as Celery)'),
  ).action(async (flags: RemoteFlags) =>
    done(
      await withApp(flags, 'control shutdown', async (app) => {
        await app.control.shutdown(flags.destination ? { destination: flags.destination } : {});
        io.stdout.write(
          `shutdown sent to ${flags.destination ? flags.destination.join(', ') : 'every node'}\n`,
        );
        return 0;
      }),
    ),
  );
}
