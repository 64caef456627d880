import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createConnection } from 'node:net';
import { fileURLToPath } from 'node:url';

/** The repository root: the CLI runs from its sources through tsx, so the tests need no build. */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Starts `celeriac …` as a child process: `node --import tsx src/cli/main.ts`, one process, so
 * signals reach the CLI itself (not an npx wrapper).
 */
export function startCli(
  args: string[],
  env: Record<string, string> = {},
): ChildProcess & { result: Promise<CliRun>; output: () => CliRun } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: ROOT,
    env: {
      ...process.env,
      CELERIAC_BROKER_URL: '',
      CELERIAC_RESULTS_URL: '',
      CELERIAC_LOG_LEVEL: '',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const result = new Promise<CliRun>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return Object.assign(child, {
    result,
    output: () => ({ code: child.exitCode, signal: child.signalCode, stdout, stderr }),
  });
}

/** Runs `celeriac …` to completion (killed after `timeoutMs`). */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 30_000,
): Promise<CliRun> {
  const child = startCli(args, env);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    return await child.result;
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once `predicate` holds, checking every 50 ms; rejects after `timeoutMs` with `what`. */
export async function until(predicate: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const REDIS_HOST = '127.0.0.1';
export const REDIS_PORT = 6379;

/** True when a Redis server answers PING on localhost:6379. */
export function redisAnswers(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: REDIS_HOST, port: REDIS_PORT });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

/** A Redis URL whose keys all start with a prefix unique to this test file (kombu's global_keyprefix). */
export function isolatedRedisUrl(name: string): { url: string; prefix: string } {
  const prefix = `celeriac-test:${name}:${randomUUID().slice(0, 8)}:`;
  return {
    url: `redis://${REDIS_HOST}:${REDIS_PORT}/0?global_keyprefix=${encodeURIComponent(prefix)}`,
    prefix,
  };
}
