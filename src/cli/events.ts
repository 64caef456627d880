import type { Command } from 'commander';
import type { CeleryEvent } from '../observability/events/types.js';
import { receiveEvents } from '../observability/index.js';
import { openApp } from './connect.js';
import type { CliIO } from './io.js';
import type { ConnectionFlags } from './options.js';
import { connectionOptions, integer, seconds } from './options.js';
import { clip } from './table.js';

interface EventsFlags extends ConnectionFlags {
  dump?: boolean;
  count?: number;
  duration?: number;
  binding?: string;
}

/** `celeriac events`: a live tail of the monitoring events (Celery's `celery events --dump`). */
export function registerEvents(program: Command, io: CliIO, done: (code: number) => void): void {
  connectionOptions(
    program
      .command('events')
      .description(
        'tail the monitoring events of Celeriac and Celery workers (started with -E), until Ctrl-C',
      )
      .option('--dump', 'print each event as one JSON line (the wire fields)')
      .option('--binding <key>', 'only events whose routing key matches (task.#, worker.*…); default #')
      .option('--count <n>', 'exit after n events', integer(1))
      .option('--duration <seconds>', 'exit after this long', seconds),
  ).action(async (flags: EventsFlags) => done(await runEvents(flags, io)));
}

export async function runEvents(flags: EventsFlags, io: CliIO): Promise<number> {
  const app = await openApp(flags, { command: 'events' });
  let seen = 0;
  const names = new Map<string, string>();
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  try {
    const receiver = await receiveEvents(
      app,
      (event) => {
        if (flags.count !== undefined && seen >= flags.count) return;
        seen++;
        io.stdout.write(`${flags.dump ? JSON.stringify(event) : describe(event, names)}\n`);
        if (flags.count !== undefined && seen >= flags.count) finish();
      },
      flags.binding ? { bindingKey: flags.binding } : {},
    );
    io.stderr.write('celeriac events: listening (Ctrl-C to stop)\n');
    const timer = flags.duration !== undefined ? setTimeout(finish, flags.duration) : null;
    const onSignal = () => finish();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      await finished;
    } finally {
      if (timer) clearTimeout(timer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await receiver.close();
    }
    return 0;
  } finally {
    await app.close();
  }
}

function time(ts: number): string {
  return new Date(ts * 1000).toISOString().slice(11, 23);
}

/**
 * One line per event, as a person reads it. `names` remembers task names by id, since only
 * task-sent and task-received carry one.
 */
export function describe(e: CeleryEvent, names: Map<string, string> = new Map()): string {
  const head = `${time(e.timestamp)} ${e.hostname} ${e.type}`;
  let task = '';
  if (typeof e.uuid === 'string') {
    if (typeof e.name === 'string') {
      names.set(e.uuid, e.name);
      // Bounded: the oldest names go first.
      if (names.size > 10_000) names.delete(names.keys().next().value as string);
    }
    task = ` ${names.get(e.uuid) ?? ''}[${e.uuid}]`;
  }
  switch (e.type) {
    case 'task-sent':
    case 'task-received':
      return `${head}${task} args=${clip(String(e.args), 80)} kwargs=${clip(String(e.kwargs), 80)}${e.retries ? ` retries=${e.retries}` : ''}`;
    case 'task-succeeded':
      return `${head}${task} result=${clip(String(e.result), 80)} runtime=${Number(e.runtime).toFixed(3)}s`;
    case 'task-failed':
    case 'task-retried':
      return `${head}${task} ${clip(String(e.exception), 120)}`;
    case 'task-revoked':
      return `${head}${task}${e.expired ? ' expired' : ''}${e.terminated ? ' terminated' : ''}`;
    case 'worker-online':
    case 'worker-heartbeat':
    case 'worker-offline':
      return `${head} active=${e.active} processed=${e.processed} ${e.sw_ident ?? ''} ${e.sw_ver ?? ''}`.trimEnd();
    default:
      return `${head}${task}`;
  }
}
