import { resolve } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { parseAutoscale } from '../controller/autoscale.js';
import { Controller } from '../controller/controller.js';
import { startMetricsServer, WorkerMetrics } from '../observability/metrics.js';
import { openApp, redact } from './connect.js';
import type { CliIO } from './io.js';
import type { ConnectionFlags } from './options.js';
import { connectionOptions, integer, LOG_LEVELS, list, prefetchCount, seconds } from './options.js';

interface WorkerFlags extends ConnectionFlags {
  queues?: string[];
  concurrency?: number;
  name?: string;
  loglevel?: string;
  prefetch?: number | 'auto';
  healthPort?: number;
  metricsPort?: number;
  shutdownTimeout?: number;
  autoscale?: { max: number; min: number };
  events?: boolean;
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
      .option(
        '--prefetch <n>',
        "messages reserved beyond the running ones: a number, or 'auto' (default)",
        prefetchCount,
      )
      .option(
        '--autoscale <max,min>',
        'grow concurrency up to MAX under a backlog, shrink to MIN when idle',
        autoscale,
      )
      .option(
        '-E, --events',
        "send Celery's monitoring events (celery events, Flower, celeriac events/dashboard)",
      )
      .option('--health-port <port>', 'serve /livez and /readyz on this port', integer(0, 65535))
      .option('--metrics-port <port>', 'serve Prometheus /metrics on this port', integer(0, 65535))
      .option(
        '--shutdown-timeout <seconds>',
        'on SIGTERM, how long running tasks may finish before the worker exits (default: 30)',
        seconds,
      )
      .addOption(
        new Option('-l, --loglevel <level>', 'log level (sets CELERIAC_LOG_LEVEL for the app)').choices(
          LOG_LEVELS,
        ),
      ),
  ).action(async (flags: WorkerFlags) => done(await runWorker(flags, io)));
}

function autoscale(value: string): { max: number; min: number } {
  try {
    return parseAutoscale(value);
  } catch (err) {
    throw new InvalidArgumentError(`${(err as Error).message}.`);
  }
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
  const controller = new Controller(app, {
    worker: {
      ...(flags.queues ? { queues: flags.queues } : {}),
      ...(flags.concurrency ? { concurrency: flags.concurrency } : {}),
      ...(flags.prefetch !== undefined ? { prefetch: flags.prefetch } : {}),
      ...(flags.name ? { name: flags.name } : {}),
      ...(flags.events ? { events: true } : {}),
      // Thread and process pools load the app again in each thread or child.
      ...(flags.app ? { appModule: resolve(flags.app) } : {}),
    },
    ...(flags.healthPort !== undefined ? { healthPort: flags.healthPort } : {}),
    ...(flags.shutdownTimeout !== undefined ? { shutdownTimeoutMs: flags.shutdownTimeout } : {}),
    ...(flags.autoscale ? { autoscale: flags.autoscale } : {}),
  });
  const worker = controller.worker;
  const metrics =
    flags.metricsPort !== undefined ? new WorkerMetrics(worker, { transport: () => app.transport() }) : null;
  const exited = controller.untilSignal((signal, mode) => {
    if (mode === 'graceful')
      io.stdout.write(
        `celeriac worker: ${signal}: stopping (running tasks may finish within ${controller.shutdownTimeoutMs / 1000}s; send ${signal} again to exit at once)\n`,
      );
    else
      io.stderr.write(
        `celeriac worker: second ${signal}: exiting now; running and reserved tasks go back to the broker and will be redelivered\n`,
      );
  });
  let metricsServer: { port: number; close(): Promise<void> } | null = null;
  try {
    await controller.start();
    metricsServer = metrics
      ? await startMetricsServer(metrics.registry, { port: flags.metricsPort as number })
      : null;
  } catch (err) {
    await app.close().catch(() => undefined);
    throw err;
  }
  const tasks = [...app.tasks.keys()];
  io.stdout.write(
    `celeriac worker ${worker.hostname} ready: broker ${redact(app.config.broker)}, queues ${worker.queues.join(',')}, ` +
      `concurrency ${worker.concurrency}${controller.autoscaler ? ` (autoscale ${controller.autoscaler.max},${controller.autoscaler.min})` : ''}, ` +
      `${tasks.length} task${tasks.length === 1 ? '' : 's'}${tasks.length ? ` (${tasks.join(', ')})` : ''}` +
      `${controller.healthPort !== null ? `, health on :${controller.healthPort}` : ''}` +
      `${metricsServer ? `, metrics on :${metricsServer.port}/metrics` : ''}\n`,
  );
  const code = await exited;
  await metricsServer?.close();
  const s = worker.stats;
  io.stdout.write(
    `celeriac worker stopped: ${s.succeeded} succeeded, ${s.failed} failed, ${s.retried} retried, ${s.rejected} dead-lettered\n`,
  );
  return code;
}
