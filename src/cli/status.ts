import type { Command } from 'commander';
import { openApp } from './connect.js';
import type { CliIO } from './io.js';
import type { ConnectionFlags } from './options.js';
import { connectionOptions, seconds } from './options.js';
import { table } from './table.js';

interface StatusFlags extends ConnectionFlags {
  timeout?: number;
  json?: boolean;
}

/** One node as `celeriac status` shows it. */
export interface NodeStatus {
  node: string;
  ok: boolean;
  pid: number | null;
  uptime: number | null;
  concurrency: number | null;
  active: number | null;
  processed: number | null;
  software: string;
}

/** `celeriac status`: the workers that answer a ping (Celeriac's and Celery's), with a few numbers each. */
export function registerStatus(program: Command, io: CliIO, done: (code: number) => void): void {
  connectionOptions(
    program
      .command('status')
      .description(
        'list the workers that answer (remote control ping) with pid, uptime, concurrency, active and processed',
      )
      .option('--timeout <seconds>', 'how long to wait for replies (default: 1)', seconds)
      .option('--json', 'print one JSON object per node instead of a table'),
  ).action(async (flags: StatusFlags) => done(await runStatus(flags, io)));
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function record(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** Exit 0 when at least one node answered, 1 when none did (as `celery status`). */
export async function runStatus(flags: StatusFlags, io: CliIO): Promise<number> {
  const app = await openApp(flags, { command: 'status' });
  try {
    const timeout = flags.timeout ?? 1000;
    const inspect = app.control.inspect({ timeout });
    const [pings, stats, active] = await Promise.all([
      app.control.ping({ timeout }),
      inspect.stats().catch(() => ({})),
      inspect.active().catch(() => ({})),
    ]);
    const nodes: NodeStatus[] = Object.keys(pings)
      .sort()
      .map((node) => {
        const s = record((stats as Record<string, unknown>)[node]);
        const total = record(s.total);
        const counts = record(s.counts);
        const finished = ['succeeded', 'failed', 'retried', 'revoked', 'rejected'].reduce(
          (n, k) => n + (num(counts[k]) ?? 0),
          0,
        );
        const fromTotal = Object.values(total).reduce<number>((n, v) => n + (num(v) ?? 0), 0);
        const list = (active as Record<string, unknown>)[node];
        return {
          node,
          ok: 'ok' in record(pings[node]),
          pid: num(s.pid),
          uptime: num(s.uptime),
          concurrency: num(record(s.pool)['max-concurrency']),
          active: Array.isArray(list) ? list.length : null,
          processed: Object.keys(counts).length ? finished : Object.keys(total).length ? fromTotal : null,
          software: typeof s.sw_ident === 'string' ? s.sw_ident : Object.keys(s).length ? 'celery' : '',
        };
      });
    if (flags.json) {
      for (const n of nodes) io.stdout.write(`${JSON.stringify(n)}\n`);
    } else if (nodes.length) {
      const show = (v: number | null) => (v === null ? '–' : v);
      io.stdout.write(
        table(
          ['node', 'status', 'software', 'pid', 'uptime (s)', 'concurrency', 'active', 'processed'],
          nodes.map((n) => [
            n.node,
            n.ok ? 'OK' : 'error',
            n.software,
            show(n.pid),
            show(n.uptime),
            show(n.concurrency),
            show(n.active),
            show(n.processed),
          ]),
          ['left', 'left', 'left', 'right', 'right', 'right', 'right', 'right'],
        ),
      );
    }
    if (!flags.json)
      io.stdout.write(
        nodes.length
          ? `${nodes.length} node${nodes.length === 1 ? '' : 's'} online.\n`
          : 'No nodes replied within the time limit.\n',
      );
    return nodes.length ? 0 : 1;
  } finally {
    await app.close();
  }
}
