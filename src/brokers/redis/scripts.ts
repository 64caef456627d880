import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ClientContext, Result } from 'ioredis';
import type { ScriptDefinitions } from './clients.js';

/**
 * The Lua scripts of the Redis transport, one atomic operation per file in `scripts/` (each file's
 * header lists KEYS, ARGV and the reply). They are registered as ioredis commands, which send
 * EVALSHA and fall back to EVAL on a new connection or after a server restart (NOSCRIPT).
 */
const NAMES = {
  celeriacFetch: 'fetch',
  celeriacSettle: 'settle',
  celeriacRequeue: 'requeue',
  celeriacDefer: 'defer',
  celeriacMoveDue: 'move_due',
  celeriacDeadLetter: 'dead_letter',
  celeriacReplayDead: 'replay_dead',
  celeriacRestore: 'restore',
  celeriacReleaseMutex: 'release_mutex',
  celeriacPurge: 'purge',
} as const;

type Arg = string | number | Buffer;

declare module 'ioredis' {
  interface RedisCommander<Context extends ClientContext = { type: 'default' }> {
    celeriacFetch(numkeys: number, ...args: Arg[]): Result<Array<string | number>, Context>;
    celeriacSettle(numkeys: number, ...args: Arg[]): Result<number, Context>;
    celeriacRequeue(numkeys: number, ...args: Arg[]): Result<number, Context>;
    celeriacDefer(numkeys: number, ...args: Arg[]): Result<number, Context>;
    celeriacMoveDue(numkeys: number, ...args: Arg[]): Result<[number, string], Context>;
    celeriacDeadLetter(numkeys: number, ...args: Arg[]): Result<number, Context>;
    celeriacReplayDead(numkeys: number, ...args: Arg[]): Result<number, Context>;
    celeriacRestore(numkeys: number, ...args: Arg[]): Result<number, Context>;
    celeriacReleaseMutex(numkeys: number, ...args: Arg[]): Result<number, Context>;
    celeriacPurge(numkeys: number, ...args: Arg[]): Result<number, Context>;
  }
}

/** Where the .lua files are: next to this module (src/, tsx, vitest) or in the package's src/ (dist/). */
function scriptsDir(): string {
  const candidates = ['./scripts/', '../../../src/brokers/redis/scripts/'];
  for (const rel of candidates) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(`${dir}fetch.lua`)) return dir;
  }
  throw new Error(`celeriac: the Redis transport's Lua scripts were not found next to ${import.meta.url}`);
}

let cache: ScriptDefinitions | undefined;

export function transportScripts(): ScriptDefinitions {
  if (!cache) {
    const dir = scriptsDir();
    cache = Object.fromEntries(
      Object.entries(NAMES).map(([command, file]) => [
        command,
        { lua: readFileSync(`${dir}${file}.lua`, 'utf8') },
      ]),
    );
  }
  return cache;
}
