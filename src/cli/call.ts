import type { Command } from 'commander';
import { TaskError, TaskRevokedError, TimeoutError } from '../index.js';
import { openApp } from './connect.js';
import type { CliIO } from './io.js';
import { CommandFailed } from './io.js';
import type { ConnectionFlags } from './options.js';
import { connectionOptions, integer, json, seconds } from './options.js';

interface CallFlags extends ConnectionFlags {
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  countdown?: number;
  queue?: string;
  priority?: number;
  wait?: boolean;
  timeout?: number;
}

/** `celeriac call NAME`: sends a task by name (Celery's `celery call`). */
export function registerCall(program: Command, io: CliIO, done: (code: number) => void): void {
  connectionOptions(
    program
      .command('call')
      .description('send a task by name and print its id (with --wait, its result)')
      .argument('<name>', 'task name, e.g. tasks.add')
      .option('-a, --args <json>', 'positional args as a JSON array, e.g. [2,3]', json('array'))
      .option('-k, --kwargs <json>', 'keyword args as a JSON object, e.g. {"x":1}', json('object'))
      .option('--countdown <seconds>', 'run no earlier than this from now (seconds, or 500ms, 5m…)', seconds)
      .option('-q, --queue <name>', "queue to send to (default: the app's route for the task, else celery)")
      .option('-p, --priority <n>', 'priority 0–9, 9 the most urgent', integer(0, 9))
      .option('-w, --wait', 'wait for the result and print it (exit 1 if the task failed)')
      .option(
        '-t, --timeout <seconds>',
        'with --wait: give up after this long (seconds, or 500ms, 5m…)',
        seconds,
      ),
  ).action(async (name: string, flags: CallFlags) => done(await runCall(name, flags, io)));
}

export async function runCall(name: string, flags: CallFlags, io: CliIO): Promise<number> {
  const app = await openApp(flags, { command: 'call', results: flags.wait ? 'shared' : 'ignored' });
  try {
    const result = await app.sendTask(name, flags.args ?? [], flags.kwargs ?? {}, {
      ...(flags.countdown !== undefined ? { countdown: flags.countdown } : {}),
      ...(flags.queue !== undefined ? { queue: flags.queue } : {}),
      ...(flags.priority !== undefined ? { priority: flags.priority } : {}),
    });
    io.stdout.write(`${result.id}\n`);
    if (!flags.wait) return 0;
    try {
      const value = await result.get(flags.timeout !== undefined ? { timeout: flags.timeout } : {});
      io.stdout.write(`${JSON.stringify(value) ?? 'null'}\n`);
      return 0;
    } catch (err) {
      if (err instanceof TaskError) {
        const text = err.excMessage.map((m) => (typeof m === 'string' ? m : JSON.stringify(m))).join(', ');
        io.stderr.write(
          `${err instanceof TaskRevokedError ? 'REVOKED' : 'FAILURE'} ${err.excType}${text ? `: ${text}` : ''}\n`,
        );
        return 1;
      }
      if (err instanceof TimeoutError) throw new CommandFailed(err.message);
      throw err;
    }
  } finally {
    await app.close();
  }
}
