import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { CeleriacError, ConfigError } from '../index.js';
import { registerCall } from './call.js';
import { registerControl } from './control.js';
import { registerDashboard } from './dashboard.js';
import { registerDead } from './dead.js';
import { registerDemo } from './demo.js';
import { registerEvents } from './events.js';
import { registerInspect } from './inspect.js';
import type { CliIO } from './io.js';
import { CommandFailed, processIO, UsageError } from './io.js';
import { registerPurge } from './purge.js';
import { registerRun } from './run.js';
import { registerStatus } from './status.js';
import { registerWorker } from './worker.js';

/** Exit codes: 0 done, 1 the command ran and failed (a task failed, a timeout), 2 a usage error. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** The `celeriac` program. Each command lives in its own file and calls the public API. */
export function buildProgram(io: CliIO, done: (code: number) => void): Command {
  const program = new Command('celeriac')
    .description('Celeriac: distributed tasks for TypeScript, wire-compatible with Python Celery')
    .version(version(), '-V, --version')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      outputError: (s, write) => write(`${firstLine(s)}\n`),
    })
    .showSuggestionAfterError(true);
  registerDemo(program, io, done);
  registerWorker(program, io, done);
  registerCall(program, io, done);
  registerDead(program, io, done);
  registerPurge(program, io, done);
  registerEvents(program, io, done);
  registerDashboard(program, io, done);
  registerStatus(program, io, done);
  registerRun(program, io, done);
  registerInspect(program, io, done);
  registerControl(program, io, done);
  return program;
}

/**
 * Runs the CLI with `argv` (the arguments after `celeriac`) and returns the exit code. Every error is
 * one line on stderr: usage errors (bad flags, an app file that cannot be loaded, a broker that this
 * command cannot use) exit 2, failures of the command itself exit 1.
 *
 * @example
 * process.exitCode = await main(['call', 'tasks.add', '--args', '[2,3]']);
 */
export async function main(argv: readonly string[], io: CliIO = processIO()): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram(io, (c) => {
    code = c;
  });
  if (argv.length === 0) {
    program.outputHelp();
    return EXIT.ok;
  }
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has printed its message (or the help); only the exit code is ours.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const usage = err instanceof UsageError || err instanceof ConfigError;
    io.stderr.write(`error: ${firstLine(messageOf(err))}\n`);
    return usage ? EXIT.usage : EXIT.failed;
  }
}

function messageOf(err: unknown): string {
  if (err instanceof UsageError || err instanceof CommandFailed || err instanceof CeleriacError)
    return err.message;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

function firstLine(text: string): string {
  return (text.split('\n').find((l) => l.trim() !== '') ?? text).trim();
}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** True when this file is the program being run (`tsx src/cli/main.ts`, `node dist/cli/main.js`). */
function isEntry(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

/**
 * Runs the CLI on this process's arguments and exits with its code (used by bin/celeriac.js). The
 * command has closed what it opened by then; exiting explicitly means a connection a library keeps
 * retrying after a failure (a broker that refused us) cannot hold the process open.
 */
export async function run(): Promise<void> {
  const code = await main(process.argv.slice(2));
  await Promise.all([flush(process.stdout), flush(process.stderr)]);
  process.exit(code);
}

function flush(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.writableLength === 0) resolve();
    else stream.write('', () => resolve());
  });
}

if (isEntry()) await run();
