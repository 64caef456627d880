import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import type { DashboardAuth } from '../dashboard/auth.js';
import { parseAuth } from '../dashboard/auth.js';
import { startDashboard } from '../dashboard/server.js';
import { openApp, redact } from './connect.js';
import type { CliIO } from './io.js';
import { UsageError } from './io.js';
import type { ConnectionFlags } from './options.js';
import { connectionOptions, integer, list } from './options.js';

interface DashboardFlags extends ConnectionFlags {
  port?: number;
  host?: string;
  auth?: { user: string; password: string };
  token?: string;
  queues?: string[];
}

/** `celeriac dashboard`: the web dashboard (workers, queues, live tasks, charts, actions). */
export function registerDashboard(program: Command, io: CliIO, done: (code: number) => void): void {
  connectionOptions(
    program
      .command('dashboard')
      .description(
        'serve the web dashboard: workers, queues, live tasks and charts from the monitoring events (workers run with -E), retry/revoke/purge',
      )
      .option('-p, --port <port>', 'port (default: 5555)', integer(0, 65535))
      .option(
        '--host <address>',
        'address to listen on (default: 127.0.0.1; any other needs --auth or --token)',
      )
      .addOption(
        new Option('--auth <user:pass>', 'require HTTP basic auth').argParser(auth).conflicts('token'),
      )
      .option('--token <token>', 'require this token (Bearer header, or ?token= once in the browser)')
      .option('-Q, --queues <names>', 'queues to show besides those the workers report', list),
  ).action(async (flags: DashboardFlags) => done(await runDashboard(flags, io)));
}

function auth(value: string): { user: string; password: string } {
  try {
    return parseAuth(value);
  } catch {
    throw new InvalidArgumentError('expected user:password.');
  }
}

/** Serves the dashboard until SIGINT/SIGTERM. */
export async function runDashboard(flags: DashboardFlags, io: CliIO): Promise<number> {
  const app = await openApp(flags, { command: 'dashboard' });
  const credentials: DashboardAuth = flags.auth ?? (flags.token ? { token: flags.token } : null);
  let server: Awaited<ReturnType<typeof startDashboard>>;
  try {
    server = await startDashboard({
      app,
      ...(flags.port !== undefined ? { port: flags.port } : {}),
      ...(flags.host ? { host: flags.host } : {}),
      auth: credentials,
      ...(flags.queues ? { queues: flags.queues } : {}),
    });
  } catch (err) {
    await app.close().catch(() => undefined);
    if (err instanceof Error && /only with --auth/.test(err.message)) throw new UsageError(err.message);
    throw err;
  }
  io.stdout.write(
    `celeriac dashboard on ${server.url} (broker ${redact(app.config.broker)}${credentials ? ', auth required' : ''}); Ctrl-C to stop\n`,
  );
  await new Promise<void>((resolve) => {
    // The server holds a socket; the timer makes the wait explicit.
    const keep = setInterval(() => {}, 1 << 30);
    const stop = () => {
      clearInterval(keep);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  await app.close();
  return 0;
}
