// The RSS bench's app: one no-op task, run on the pool named by CELERIAC_BENCH_POOL. Plain
// JavaScript so that it runs from the build (dist/) without a TypeScript loader; the child picks
// the Celeriac module (dist/index.js, or src/index.ts under tsx) through CELERIAC_BENCH_MODULE.
const { Celeriac } = await import(process.env.CELERIAC_BENCH_MODULE);

export const app = new Celeriac({ broker: 'memory://rss', logger: 'silent' });
const pool = process.env.CELERIAC_BENCH_POOL ?? 'async';
export const noop = app.task('bench.noop', (_i) => null, {
  ignoreResult: true,
  ...(pool === 'async' ? {} : { pool }),
});
