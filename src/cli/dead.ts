import type { Command } from 'commander';
import type { DeadLetter } from '../index.js';
import { confirmed } from './confirm.js';
import { openApp } from './connect.js';
import type { CliIO } from './io.js';
import type { ConnectionFlags } from './options.js';
import { connectionOptions, integer } from './options.js';
import { clip, table } from './table.js';

interface ListFlags extends ConnectionFlags {
  limit?: number;
  json?: boolean;
}
interface ReplayFlags extends ConnectionFlags {
  id?: string[];
}
interface PurgeFlags extends ConnectionFlags {
  force?: boolean;
}

/** `celeriac dead list|replay|purge QUEUE`: the dead letters of a queue (transport.deadLetters). */
export function registerDead(program: Command, io: CliIO, done: (code: number) => void): void {
  const dead = program.command('dead').description('list, replay or purge the dead letters of a queue');
  connectionOptions(
    dead
      .command('list')
      .description('list dead letters: id, reason, task, when')
      .argument('<queue>', 'queue name')
      .option('--limit <n>', 'show at most n (default: 100)', integer(1))
      .option('--json', 'print JSON lines instead of a table'),
  ).action(async (queue: string, flags: ListFlags) => done(await runDeadList(queue, flags, io)));
  connectionOptions(
    dead
      .command('replay')
      .description('put dead letters back on their queue (all, or those given with --id)')
      .argument('<queue>', 'queue name')
      .option('--id <id...>', 'replay only these dead letters (ids from `dead list`)'),
  ).action(async (queue: string, flags: ReplayFlags) => done(await runDeadReplay(queue, flags, io)));
  connectionOptions(
    dead
      .command('purge')
      .description('delete the dead letters of a queue')
      .argument('<queue>', 'queue name')
      .option('-f, --force', 'do not ask for confirmation'),
  ).action(async (queue: string, flags: PurgeFlags) => done(await runDeadPurge(queue, flags, io)));
}

export async function runDeadList(queue: string, flags: ListFlags, io: CliIO): Promise<number> {
  const app = await openApp(flags, { command: 'dead list' });
  try {
    const letters = await (await app.transport()).deadLetters.list(queue, { limit: flags.limit ?? 100 });
    if (flags.json) {
      for (const d of letters) io.stdout.write(`${JSON.stringify(d)}\n`);
      return 0;
    }
    if (letters.length === 0) {
      io.stdout.write(`no dead letters in ${queue}\n`);
      return 0;
    }
    io.stdout.write(table(['id', 'reason', 'task', 'at'], letters.map(row)));
    return 0;
  } finally {
    await app.close();
  }
}

function row(d: DeadLetter): string[] {
  const h = d.message?.headers;
  const task = h ? `${String(h.task)}[${String(h.id)}]` : '(undecodable)';
  return [d.id, clip(d.reason, 60), task, new Date(d.at).toISOString()];
}

export async function runDeadReplay(queue: string, flags: ReplayFlags, io: CliIO): Promise<number> {
  const app = await openApp(flags, { command: 'dead replay' });
  try {
    const count = await (await app.transport()).deadLetters.replay(queue, flags.id ? { ids: flags.id } : {});
    io.stdout.write(`replayed ${count} dead letter${count === 1 ? '' : 's'} onto ${queue}\n`);
    return 0;
  } finally {
    await app.close();
  }
}

export async function runDeadPurge(queue: string, flags: PurgeFlags, io: CliIO): Promise<number> {
  const app = await openApp(flags, { command: 'dead purge' });
  try {
    if (!(await confirmed(io, flags.force, `delete every dead letter of queue ${queue}?`))) return 1;
    const count = await (await app.transport()).deadLetters.purge(queue);
    io.stdout.write(`deleted ${count} dead letter${count === 1 ? '' : 's'} of ${queue}\n`);
    return 0;
  } finally {
    await app.close();
  }
}
