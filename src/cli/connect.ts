import { readEnv } from '../env.js';
import { Celeriac } from '../index.js';
import { UsageError } from './io.js';
import { loadApp } from './load-app.js';
import type { ConnectionFlags } from './options.js';

/** What a command needs from the broker side. */
export interface Needs {
  /** The command's name, for error messages (`worker`, `call`…). */
  command: string;
  /** The result store must be reachable from other processes too (worker, call --wait). */
  results?: 'shared' | 'ignored';
  /** Logger level from a flag, for an app built from `--broker` (an app file keeps its own). */
  logLevel?: string | undefined;
  /** Level when neither the flag nor CELERIAC_LOG_LEVEL gives one. Default `warn`. */
  defaultLogLevel?: string;
}

/**
 * The app a command works on: loaded from `--app FILE`, or built from `--broker`/`--results`, or from
 * CELERIAC_BROKER_URL / CELERIAC_RESULTS_URL. Refuses a broker (or result store) that other
 * processes cannot reach: memory:// lives inside one process, so a worker and a `call` in two
 * processes would never meet. The check asks the transport (`shared`), not the URL scheme.
 *
 * The caller owns the app and must `close()` it.
 */
export async function openApp(flags: ConnectionFlags, needs: Needs): Promise<Celeriac> {
  const app = flags.app ? await loadApp(flags.app) : fromUrls(flags, needs);
  try {
    const transport = await app.transport();
    if (!transport.shared) throw new UsageError(notShared('broker', app.config.broker, needs.command));
    if (needs.results === 'shared' && app.config.results) {
      const sink = await app.resultSink();
      if (sink && !sink.shared)
        throw new UsageError(notShared('result store', app.config.results, needs.command));
    }
    return app;
  } catch (err) {
    await app.close().catch(() => undefined);
    throw err;
  }
}

function fromUrls(flags: ConnectionFlags, needs: Needs): Celeriac {
  const env = readEnv();
  const broker = flags.broker ?? env.brokerUrl;
  const results = flags.results ?? env.resultsUrl;
  if (!broker) {
    throw new UsageError(
      `no broker: give --app FILE or --broker URL (e.g. redis://localhost:6379/0), or set CELERIAC_BROKER_URL; to try Celeriac without one, run \`celeriac demo\``,
    );
  }
  return new Celeriac({
    broker,
    ...(results ? { results } : {}),
    logger: needs.logLevel ?? env.logLevel ?? needs.defaultLogLevel ?? 'warn',
  });
}

function notShared(what: string, url: string, command: string): string {
  return (
    `${what} ${redact(url)} is not shared between processes (memory:// lives inside one process), ` +
    `so \`celeriac ${command}\` could not reach anything another process sends or reads: ` +
    'use a real broker (e.g. redis://localhost:6379/0), or `celeriac demo` to run everything in one process'
  );
}

/** `redis://:secret@host` → `redis://:***@host`, for messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}
