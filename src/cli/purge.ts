import type { Command } from 'commander';
import { confirmed } from './confirm.js';
import { openApp } from './connect.js';
import type { CliIO } from './io.js';
import type { ConnectionFlags } from './options.js';
import { connectionOptions } from './options.js';
import { ProgressLine, progressBar } from './progress.js';

interface PurgeFlags extends ConnectionFlags {
  force?: boolean;
}

/** `celeriac purge QUEUE`: deletes every ready message of a queue (delayed and dead ones stay). */
export function registerPurge(program: Command, io: CliIO, done: (code: number) => void): void {
  connectionOptions(
    program
      .command('purge')
      .description('delete every message waiting in a queue (not delayed or dead-lettered ones)')
      .argument('<queue>', 'queue name')
      .option('-f, --force', 'do not ask for confirmation'),
  ).action(async (queue: string, flags: PurgeFlags) => done(await runPurge(queue, flags, io)));
}

export async function runPurge(queue: string, flags: PurgeFlags, io: CliIO): Promise<number> {
  const app = await openApp(flags, { command: 'purge' });
  try {
    const transport = await app.transport();
    const depth = await transport.depth(queue);
    if (
      !(await confirmed(
        io,
        flags.force,
        `delete the ${depth} message${depth === 1 ? '' : 's'} waiting in queue ${queue}?`,
      ))
    )
      return 1;
    // One broker call removes them all; the bar says what is going on while a large queue is purged.
    const line = new ProgressLine(io.stderr);
    line.update(`${progressBar(0, depth)} purging ${depth} message${depth === 1 ? '' : 's'} from ${queue}…`);
    const count = await transport.purge(queue);
    line.done(`${progressBar(depth, depth)} purged`);
    io.stdout.write(`purged ${count} message${count === 1 ? '' : 's'} from ${queue}\n`);
    return 0;
  } finally {
    await app.close();
  }
}
