import { describe, expect, it } from 'vitest';
import type { Transport } from '../../../src/brokers/transport.js';
import { stampSendTime, startMetricsServer, WorkerMetrics } from '../../../src/observability/metrics.js';
import { testApp } from '../../helpers/app.js';

/** `name{labels} value` lines of a Prometheus text exposition → value by `name{labels}`. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

describe('Prometheus metrics of a worker', () => {
  it('counts tasks by name and state, histograms of runtime and latency, queue depth, concurrency, prefetched', async () => {
    const app = testApp();
    let gate: () => void = () => {};
    const held = new Promise<void>((r) => {
      gate = r;
    });
    const add = app.task('tasks.add', (a: number, b: number) => a + b);
    const fail = app.task('tasks.fail', () => {
      throw new Error('boom');
    });
    let tries = 0;
    const flaky = app.task(
      'tasks.flaky',
      (ctx) => {
        if (++tries < 3) throw ctx.retry({ countdown: 1 });
        return tries;
      },
      { bind: true },
    );
    const slow = app.task('tasks.slow', () => held, { queue: 'slow' });
    const worker = app.worker({ queues: ['celery', 'slow'], concurrency: 4, prefetch: 0 });
    const metrics = new WorkerMetrics(worker, { transport: () => app.transport() });
    const server = await startMetricsServer(metrics.registry, { port: 0, host: '127.0.0.1' });
    try {
      await worker.start();
      const results = await Promise.all([add.delay(1, 2), add.delay(3, 4), add.delay(5, 6)]);
      for (const r of results) await r.get({ timeout: 5000 });
      await (await fail.delay()).get({ timeout: 5000 }).catch(() => undefined);
      expect(await (await flaky.delay()).get({ timeout: 5000 })).toBe(3);
      // Four slow tasks fill the pool; three more wait in the queue (prefetch 0).
      for (let i = 0; i < 7; i++) await slow.delay();
      const deadline = Date.now() + 5000;
      while (worker.active < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
      expect(res.headers.get('content-type')).toContain('text/plain');
      const m = parse(await res.text());
      expect(m.get('celeriac_tasks_total{task="tasks.add",state="succeeded"}')).toBe(3);
      expect(m.get('celeriac_tasks_total{task="tasks.add",state="received"}')).toBe(3);
      expect(m.get('celeriac_tasks_total{task="tasks.fail",state="failed"}')).toBe(1);
      expect(m.get('celeriac_tasks_total{task="tasks.flaky",state="retried"}')).toBe(2);
      expect(m.get('celeriac_tasks_total{task="tasks.flaky",state="succeeded"}')).toBe(1);
      expect(m.get('celeriac_task_retries_total{task="tasks.flaky"}')).toBe(2);
      expect(m.get('celeriac_task_runtime_seconds_count{task="tasks.add",state="succeeded"}')).toBe(3);
      expect(m.get('celeriac_task_runtime_seconds_count{task="tasks.fail",state="failed"}')).toBe(1);
      expect(
        m.get('celeriac_task_runtime_seconds_bucket{le="+Inf",task="tasks.add",state="succeeded"}'),
      ).toBe(3);
      expect(m.get('celeriac_task_latency_seconds_count{task="tasks.add"}')).toBe(3);
      expect(m.get('celeriac_task_latency_seconds_count{task="tasks.flaky"}')).toBe(3);
      expect(m.get('celeriac_queue_depth{queue="slow"}')).toBe(3);
      expect(m.get('celeriac_queue_depth{queue="celery"}')).toBe(0);
      expect(m.get('celeriac_worker_concurrency')).toBe(4);
      expect(m.get('celeriac_worker_active_tasks')).toBe(4);
      expect(m.get('celeriac_worker_prefetched_tasks')).toBe(0);
      expect(m.get('celeriac_broker_up')).toBe(1);
      expect(m.get('celeriac_broker_reconnects_total')).toBe(0);
    } finally {
      gate();
      await worker.stop();
      metrics.close();
      await server.close();
    }
  });

  it('with stampSendTime, latency is send-to-start (tasks sent before the worker started waited that long)', async () => {
    const app = testApp();
    const add = app.task('tasks.add', (a: number, b: number) => a + b);
    const stop = stampSendTime(app);
    const results = await Promise.all([add.delay(1, 1), add.delay(2, 2)]);
    stop();
    await new Promise((r) => setTimeout(r, 300));
    const worker = app.worker();
    const metrics = new WorkerMetrics(worker, { transport: () => app.transport() });
    await worker.start();
    for (const r of results) await r.get({ timeout: 5000 });
    await worker.stop();
    const m = parse(await metrics.metrics());
    expect(m.get('celeriac_task_latency_seconds_count{task="tasks.add"}')).toBe(2);
    expect(m.get('celeriac_task_latency_seconds_sum{task="tasks.add"}')).toBeGreaterThanOrEqual(0.55);
    expect(m.get('celeriac_task_latency_seconds_bucket{le="0.25",task="tasks.add"}')).toBe(0);
  });

  it('counts broker reconnects (unhealthy → healthy) and reports the publish backlog where the transport keeps one', async () => {
    const app = testApp();
    const real = await app.transport();
    let status: 'healthy' | 'unhealthy' = 'healthy';
    const fake = Object.assign(Object.create(real) as Transport, {
      health: () => ({ status }),
      backlog: 7,
    });
    const worker = app.worker();
    const metrics = new WorkerMetrics(worker, { transport: async () => fake, healthIntervalMs: 10 });
    await worker.start();
    const tick = () => new Promise((r) => setTimeout(r, 50));
    for (let i = 0; i < 2; i++) {
      status = 'unhealthy';
      await tick();
      expect(parse(await metrics.metrics()).get('celeriac_broker_up')).toBe(0);
      status = 'healthy';
      await tick();
    }
    const m = parse(await metrics.metrics());
    expect(m.get('celeriac_broker_reconnects_total')).toBe(2);
    expect(m.get('celeriac_broker_up')).toBe(1);
    expect(m.get('celeriac_publish_backlog')).toBe(7);
    await worker.stop();
  });
});
