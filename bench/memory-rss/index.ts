import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Measurement, Suite } from '../harness.js';

const TASKS = Number(process.env.CELERIAC_BENCH_TASKS ?? 100_000);
const POOLS = ['async', 'threads', 'process'] as const;
const ROOT = new URL('../../', import.meta.url);
const DIST = new URL('dist/index.js', ROOT);

interface ChildReport {
  pool: string;
  idle: number;
  after: number;
  idleHeap: number;
  afterHeap: number;
  peak: number;
  tasks: number;
  ms: number;
}

/**
 * Worker RSS: each pool's worker in its own process (so the harness's memory is not counted),
 * idle after start and after TASKS no-op tasks, each after a full GC. Runs from the build
 * (`npm run build`) when there is one, as a deployed worker does; else from the sources under tsx,
 * whose loader adds to RSS (the `mode` detail says which).
 */
export const suite: Suite = {
  name: 'memory-rss',
  description: `worker RSS idle and after ${TASKS.toLocaleString('en-US')} no-op tasks, per pool (memory:// broker, one process per pool)`,
  async run(ctx) {
    const fromDist = existsSync(DIST);
    const mode = fromDist ? 'dist' : 'tsx';
    ctx.log(
      `running the workers from ${mode === 'dist' ? 'dist/ (built)' : 'src/ under tsx (no build found)'}`,
    );
    const out: Measurement[] = [];
    for (const pool of POOLS) {
      ctx.progress(`${pool} pool`, 0, 1);
      let r: ChildReport;
      try {
        r = await measure(pool, fromDist);
      } catch (err) {
        ctx.log(`${pool} pool: not measured (${(err as Error).message.split('\n')[0]})`);
        continue;
      }
      ctx.progress(`${pool} pool`, 1, 1);
      const details = {
        mode,
        tasks: r.tasks,
        drainMs: Math.round(r.ms),
        peakRssMb: round(r.peak),
        heapUsedIdleMb: round(r.idleHeap),
        heapUsedAfterMb: round(r.afterHeap),
      };
      ctx.log(
        `${pool} pool: heap used ${round(r.idleHeap)} MB idle, ${round(r.afterHeap)} MB after; peak RSS ${round(r.peak)} MB`,
      );
      out.push(
        { name: `${pool} pool: RSS idle`, unit: 'MB', better: 'lower', value: round(r.idle), details },
        {
          name: `${pool} pool: RSS after ${TASKS.toLocaleString('en-US')} tasks`,
          unit: 'MB',
          better: 'lower',
          value: round(r.after),
          details,
        },
      );
    }
    return out;
  },
};

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

function measure(pool: string, fromDist: boolean): Promise<ChildReport> {
  const child = fileURLToPath(new URL('./child.mjs', import.meta.url));
  const module = fromDist ? DIST.href : pathToFileURL(fileURLToPath(new URL('src/index.ts', ROOT))).href;
  const args = [...(fromDist ? [] : ['--import', 'tsx']), '--expose-gc', child];
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, {
      cwd: fileURLToPath(ROOT),
      env: {
        ...process.env,
        CELERIAC_BENCH_MODULE: module,
        CELERIAC_BENCH_POOL: pool,
        CELERIAC_BENCH_TASKS: String(TASKS),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    p.on('error', reject);
    p.on('close', (code) => {
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (code === 0 && line) resolve(JSON.parse(line) as ChildReport);
      else reject(new Error(stderr.trim() || `exited with code ${code}`));
    });
  });
}
