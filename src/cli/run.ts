import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import type { FSWatcher } from 'node:fs';
import { watch } from 'node:fs';
import { dirname, extname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { Option } from 'commander';
import { Controller } from '../controller/controller.js';
import { redact } from './connect.js';
import type { CliIO } from './io.js';
import { loadApp } from './load-app.js';
import { integer, LOG_LEVELS, list, seconds } from './options.js';

interface RunFlags {
  app: string;
  broker?: string;
  results?: string;
  queues?: string[];
  concurrency?: number;
  healthPort?: number;
  shutdownTimeout?: number;
  loglevel?: string;
  watch: boolean;
}

/** Files whose change restarts the worker (the app's own sources and config). */
const WATCHED = new Set(['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs', '.json']);
const IGNORED = /(^|[/\\])(node_modules|\.git|dist)([/\\]|$)/;
const DEBOUNCE_MS = 200;

/**
 * `celeriac run --app FILE`: the all-in-one dev mode. Runs the app's worker (and its scheduler and
 * dashboard once Celeriac has them) in one process on memory:// unless `--broker` is given, and
 * restarts it gracefully when a file under the app file's folder changes.
 */
export function registerRun(program: Command, io: CliIO, done: (code: number) => void): void {
  program
    .command('run')
    .description(
      'dev mode: run the app (worker) in one process, on memory:// unless --broker is given, restarting on file change',
    )
    .requiredOption(
      '-A, --app <file>',
      'app module: its `app` export (or default export) is the Celeriac app',
    )
    .option('-b, --broker <url>', 'broker URL (default: memory://, inside this process)')
    .option('-r, --results <url>', 'result store URL (default: the same memory:// store)')
    .option('-Q, --queues <names>', 'queues to consume, comma-separated', list)
    .option('-c, --concurrency <n>', 'tasks run at once (default: 10)', integer(1))
    .option('--health-port <port>', 'serve /livez and /readyz on this port', integer(0, 65535))
    .option(
      '--shutdown-timeout <seconds>',
      'on restart or SIGTERM, how long running tasks may finish (default: 5)',
      seconds,
    )
    .option('--no-watch', 'do not restart on file change')
    .addOption(new Option('-l, --loglevel <level>', 'log level').choices(LOG_LEVELS))
    .action(async (flags: RunFlags) =>
      done(flags.watch ? await supervise(flags, io) : await runOnce(flags, io)),
    );
}

/** One run of the app in this process, until SIGTERM/SIGINT. */
export async function runOnce(flags: RunFlags, io: CliIO): Promise<number> {
  // The app reads its broker from the environment when its code names none: memory:// by default.
  process.env.CELERIAC_BROKER_URL = flags.broker ?? '';
  process.env.CELERIAC_RESULTS_URL = flags.results ?? (flags.broker ? '' : 'memory://');
  if (flags.loglevel) process.env.CELERIAC_LOG_LEVEL = flags.loglevel;
  const app = await loadApp(flags.app);
  const controller = new Controller(app, {
    worker: {
      ...(flags.queues ? { queues: flags.queues } : {}),
      ...(flags.concurrency ? { concurrency: flags.concurrency } : {}),
      appModule: resolve(flags.app),
    },
    ...(flags.healthPort !== undefined ? { healthPort: flags.healthPort } : {}),
    shutdownTimeoutMs: flags.shutdownTimeout ?? 5000,
  });
  const exited = controller.untilSignal();
  try {
    await controller.start();
  } catch (err) {
    await app.close().catch(() => undefined);
    throw err;
  }
  const w = controller.worker;
  io.stdout.write(
    `celeriac run: worker ${w.hostname} ready: broker ${redact(app.config.broker)}, queues ${w.queues.join(',')}, ` +
      `concurrency ${w.concurrency}, tasks ${[...app.tasks.keys()].join(', ') || 'none'}\n`,
  );
  return exited;
}

/**
 * Runs the app in a child process (a fresh module graph each time, so edits to any imported file
 * take effect) and restarts it when a watched file changes: debounced, and graceful (the old
 * worker drains for --shutdown-timeout before the new one starts). A child that crashes (a syntax
 * error in the edit) is restarted on the next change.
 */
async function supervise(flags: RunFlags, io: CliIO): Promise<number> {
  const appFile = resolve(flags.app);
  const dir = dirname(appFile);
  let child: ChildProcess | null = null;
  let exitedChild: Promise<number> = Promise.resolve(0);
  let restarting = false;
  let pendingChange: string | null = null;
  let timer: NodeJS.Timeout | null = null;
  let finishing = false;

  const start = () => {
    const self = fileURLToPath(import.meta.url);
    const main = resolve(dirname(self), `main${extname(self)}`);
    const c = spawn(process.execPath, [...process.execArgv, main, ...childArgs(flags, appFile)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: Ctrl-C reaches only this supervisor, which forwards it once.
      detached: true,
      env: process.env,
    });
    c.stdout?.on('data', (d: Buffer) => io.stdout.write(d.toString()));
    c.stderr?.on('data', (d: Buffer) => io.stderr.write(d.toString()));
    exitedChild = new Promise<number>((done) => {
      c.on('exit', (code, signal) => {
        if (child === c) child = null;
        if (!restarting && !finishing)
          io.stderr.write(
            `celeriac run: the app exited (${signal ?? `code ${code}`}); waiting for a change to restart\n`,
          );
        done(code ?? 1);
      });
    });
    child = c;
  };
  const killChild = () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killChild);

  const restart = async () => {
    if (restarting || finishing) return;
    restarting = true;
    while (pendingChange !== null && !finishing) {
      const changed = pendingChange;
      pendingChange = null;
      io.stdout.write(`celeriac run: ${changed} changed: restarting\n`);
      if (child) {
        child.kill('SIGTERM');
        await exitedChild;
      }
      if (!finishing) start();
    }
    restarting = false;
  };

  let watcher: FSWatcher;
  try {
    watcher = watch(dir, { recursive: true }, (_event, filename) => {
      const name = filename ? filename.toString() : '';
      if (!name || IGNORED.test(name) || !WATCHED.has(extname(name))) return;
      pendingChange = relative(process.cwd(), resolve(dir, name));
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => void restart(), DEBOUNCE_MS);
    });
  } catch (err) {
    io.stderr.write(
      `celeriac run: cannot watch ${dir} (${(err as Error).message}); running without restarts\n`,
    );
    return runOnce(flags, io);
  }
  io.stdout.write(`celeriac run: watching ${relative(process.cwd(), dir) || '.'} for changes\n`);
  start();

  const code = await new Promise<number>((done) => {
    let signals = 0;
    const finish = (code: number) => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      done(code);
    };
    // First signal: the app stops gracefully; a second one is forwarded too (a cold stop).
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      finishing = true;
      if (timer) clearTimeout(timer);
      watcher.close();
      if (!child) return finish(0);
      child.kill(signal);
      if (signals === 1) void exitedChild.then(finish);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  process.off('exit', killChild);
  return code;
}

function childArgs(flags: RunFlags, appFile: string): string[] {
  const args = ['run', '--app', appFile, '--no-watch'];
  if (flags.broker) args.push('--broker', flags.broker);
  if (flags.results) args.push('--results', flags.results);
  if (flags.queues) args.push('--queues', flags.queues.join(','));
  if (flags.concurrency) args.push('--concurrency', String(flags.concurrency));
  if (flags.healthPort !== undefined) args.push('--health-port', String(flags.healthPort));
  if (flags.shutdownTimeout !== undefined) args.push('--shutdown-timeout', `${flags.shutdownTimeout}ms`);
  if (flags.loglevel) args.push('--loglevel', flags.loglevel);
  return args;
}
