import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { ProgressLine, progressBar } from '../src/cli/progress.js';
import { formatNumber, percentile } from '../src/cli/stats.js';
import { table } from '../src/cli/table.js';

/**
 * The benchmark harness: suites, measurements, the table and the JSON file. A suite lives in
 * `bench/<name>/index.ts` and exports `suite`; `npm run bench -- <name>` runs it, `npm run bench`
 * runs every suite found.
 *
 * @example
 * // bench/redis/index.ts
 * export const suite: Suite = {
 *   name: 'redis',
 *   description: 'Celeriac on Redis, against BullMQ and Python Celery',
 *   peers: ['bullmq', 'celery'],
 *   async available() { return (await ping()) ? true : 'no Redis on localhost:6379'; },
 *   async run(ctx) { … return [{ name: 'publish', unit: 'tasks/s', better: 'higher', value, peers: { bullmq: v2, celery: null } }]; },
 * };
 */
export interface Suite {
  /** The folder name: `npm run bench -- <name>`. */
  name: string;
  description: string;
  /** Peer systems this suite measures next to Celeriac (columns of the table, in this order). */
  peers?: readonly string[];
  /** True when the suite can run here, or why it cannot (it is then skipped, not failed). */
  available?(): Promise<true | string>;
  run(ctx: BenchContext): Promise<Measurement[]>;
}

/** One number, for Celeriac and (optionally) each peer. */
export interface Measurement {
  /** What was measured, e.g. `drain, concurrency 50`. */
  name: string;
  /** `tasks/s`, `ms`… */
  unit: string;
  /** Whether a higher value is better (throughput) or a lower one (latency): the ratio reads accordingly. */
  better: 'higher' | 'lower';
  /** Celeriac's value. */
  value: number;
  /** Each peer's value, by peer name; null when the peer could not be measured. */
  peers?: Record<string, number | null>;
  /** Details kept in the JSON only (sample counts, settings). */
  details?: Record<string, unknown>;
}

export interface BenchContext {
  /** Shows how far a step has come (one rewritten line on a terminal, periodic lines elsewhere). */
  progress(step: string, done: number, total: number): void;
  /** A line for the log (e.g. the settings of a step). */
  log(text: string): void;
}

/** What a run writes to bench/results/<suite>-<timestamp>.json. */
export interface SuiteReport {
  suite: string;
  description: string;
  startedAt: string;
  durationMs: number;
  machine: { node: string; platform: string; arch: string; cpus: number; cpuModel: string; memoryGb: number };
  peers: readonly string[];
  measurements: Measurement[];
}

/** A context that reports progress on `stream` (stderr). */
export function createContext(
  stream: NodeJS.WriteStream = process.stderr,
): BenchContext & { finish(): void } {
  const line = new ProgressLine(
    { write: (s) => void stream.write(s), isTTY: stream.isTTY === true },
    { everyMs: 1000 },
  );
  let current = '';
  let last = '';
  return {
    progress(step, done, total) {
      if (current && step !== current) line.done(last);
      current = step;
      const pct = total > 0 ? Math.floor((done / total) * 100) : 100;
      last = `  ${step}: ${progressBar(done, total)} ${formatNumber(done)}/${formatNumber(total)} (${pct}%)`;
      if (done >= total) {
        line.done(last);
        current = '';
      } else {
        line.update(last);
      }
    },
    log(text) {
      if (current) {
        line.done(last);
        current = '';
      }
      stream.write(`  ${text}\n`);
    },
    finish() {
      if (current) line.done(last);
      current = '';
    },
  };
}

/**
 * The results as a table: one row per measurement, Celeriac's value, then for each peer its value
 * and the ratio Celeriac / peer (above 1 means Celeriac is ahead for `higher`, behind for `lower`).
 */
export function formatTable(report: Pick<SuiteReport, 'peers' | 'measurements'>): string {
  const head = ['measurement', 'unit', 'celeriac'];
  for (const peer of report.peers) head.push(peer, `celeriac / ${peer}`);
  const rows: string[][] = [];
  for (const m of report.measurements) {
    const row = [m.name, m.unit, formatNumber(m.value)];
    for (const peer of report.peers) {
      const v = m.peers?.[peer];
      row.push(
        v == null ? '–' : formatNumber(v),
        v == null || v === 0 ? '–' : `${(m.value / v).toFixed(2)}×`,
      );
    }
    rows.push(row);
  }
  return table(
    head,
    rows,
    head.map((_, i) => (i < 2 ? 'left' : 'right')),
  );
}

/** Writes the report as JSON to `dir`/<suite>-<timestamp>.json and returns the path. */
export function writeReport(report: SuiteReport, dir: URL = new URL('./results/', import.meta.url)): string {
  mkdirSync(dir, { recursive: true });
  const stamp = report.startedAt.replace(/[:.]/g, '-');
  const file = new URL(`${report.suite}-${stamp}.json`, dir);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  return file.pathname;
}

export function machine(): SuiteReport['machine'] {
  const list = cpus();
  return {
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    cpus: list.length,
    cpuModel: list[0]?.model ?? 'unknown',
    memoryGb: Math.round(totalmem() / 2 ** 30),
  };
}

/** p50 and p99 of a list of samples, in the samples' unit. */
/**
 * Milliseconds on CLOCK_MONOTONIC, the one clock every process on the machine reads alike: send
 * times are stamped with it in one process and compared in another. (`performance.timeOrigin +
 * performance.now()` is fixed at each process's start, so two processes disagree by however much the
 * wall clock was slewed in between; Python's `time.monotonic()` reads the same clock as this.)
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function latencySummary(samples: readonly number[]): { p50: number; p99: number; samples: number } {
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), samples: samples.length };
}

/**
 * Calls `send(i)` `count` times at a steady `perSecond`, catching up after a slow tick rather than
 * drifting, and reports progress. Resolves when the last call has resolved.
 */
export async function atSteadyRate(
  count: number,
  perSecond: number,
  send: (i: number) => Promise<unknown>,
  onProgress?: (done: number) => void,
): Promise<void> {
  const start = performance.now();
  const pending: Promise<unknown>[] = [];
  let i = 0;
  while (i < count) {
    const due = Math.min(count, Math.floor(((performance.now() - start) / 1000) * perSecond) + 1);
    while (i < due) pending.push(send(i++));
    onProgress?.(i);
    if (i < count) await new Promise((r) => setTimeout(r, Math.max(1, 1000 / perSecond)));
  }
  await Promise.all(pending);
}
