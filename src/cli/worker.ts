import { resolve } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import { openApp, redact } from './connect.js';
import type { CliIO } from './io.js';
import type { ConnectionFlags } from './options.js';
import { connectionOptions, integer, LOG_LEVELS, list } from './options.js';

interface WorkerFlags extends ConnectionFlags {
  queues?: string[];
  concurrency?: number;
  name?: string;
  loglevel?: string;
}

/** `celeriac worker`: runs a worker for an app until SIGTERM or SIGINT. */
export function registerWorker(program: Command, io: CliIO, done: (code: number) => void): void {
  connectionOptions(
    program
      .command('worker')
      .description("run a worker: consume the app's queues and run its tasks until SIGTERM/SIGINT")
      .option(
        '-Q, --queues <names>',
        'queues to consume, comma-separated (default: every queue the app names)',
        list,
      )
      .option('-c, --concurrency <n>', 'tasks run at once (default: 10)', integer(1))
      .option('-n, --name <name>', 'node name (default: celeriac@<hostname>)')
      .addOption(
        new Option('-l, --loglevel <level>', 'log level (sets CELERIAC_LOG_LEVEL for the app)').choices(
          LOG_LEVELS,
        ),
      ),
  ).action(async (flags: WorkerFlags) => done(await runWorker(flags, io)));
}

/**
 * Starts the worker and waits for a signal. The first SIGTERM/SIGINT stops it gracefully (in-flight
 * tasks finish, reserved ones go back to the broker); a second one exits at once (unfinished tasks
 * are redelivered, since they were never acked).
 */
export async function runWorker(flags: WorkerFlags, io: CliIO): Promise<number> {
  // An app file builds its logger when it is imported: the level reaches it through the environment.
  if (flags.loglevel) process.env.CELERIAC_LOG_LEVEL = flags.loglevel;
  const app = await openApp(flags, {
    command: 'worker',
    results: 'shared',
    logLevel: flags.loglevel,
    defaultLogLevel: 'info',
  });
  const worker = app.worker({
    ...(flags.queues ? { queues: flags.queues } : {}),
    ...(flags.concurrency ? { concurrency: flags.concurrency } : {}),
    ...(flags.name ? { name: flags.name } : {}),
    // Thread and process pools load the app again in each thread or child.
    ...(flags.app ? { appModule: resolve(flags.app) } : {}),
  });
  const stopping = new Promise<NodeJS.Signals>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      process.once('SIGTERM', hardExit);
      process.once('SIGINT', hardExit);
      resolve(signal);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  const hardExit = (signal: NodeJS.Signals) => {
    io.stderr.write(
      `celeriac worker: second ${signal}: exiting now; tasks still running were not acked and will be redelivered\n`,
    );
    process.exit(1);
  };
  try {
    await worker.start();
  } catch (err) {
    await app.close().catch(() => undefined);
    throw err;
  }
  const tasks = [...app.tasks.keys()];
  io.stdout.write(
    `celeriac worker ${worker.hostname} ready: broker ${redact(app.config.broker)}, queues ${worker.queues.join(',')}, ` +
      `concurrency ${worker.concurrency}, ${tasks.length} task${tasks.length === 1 ? '' : 's'}${tasks.length ? ` (${tasks.join(', ')})` : ''}\n`,
  );
  const signal = await stopping;
  io.stdout.write(
    `celeriac worker: ${signal}: stopping (running tasks may finish; send ${signal} again to exit at once)\n`,
  );
  await worker.stop();
  await app.close();
  const s = worker.stats;
  io.stdout.write(
    `celeriac worker stopped: ${s.succeeded} succeeded, ${s.failed} failed, ${s.retried} retried, ${s.rejected} dead-lettered\n`,
  );
  process.off('SIGTERM', hardExit);
  process.off('SIGINT', hardExit);
  return 0;
}
