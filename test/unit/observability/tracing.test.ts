import { AsyncLocalStorage } from 'node:async_hooks';
import type { Context, ContextManager } from '@opentelemetry/api';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp } from '../../helpers/app.js';

/** The smallest async context manager (what @opentelemetry/context-async-hooks provides). */
class AlsContextManager implements ContextManager {
  readonly #als = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.#als.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.#als.run(ctx, () => fn.call(thisArg, ...args));
  }
  bind<T>(ctx: Context, target: T): T {
    if (typeof target !== 'function') return target;
    const fn = target as unknown as (...a: unknown[]) => unknown;
    return ((...a: unknown[]) => this.with(ctx, () => fn(...a))) as unknown as T;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    return this;
  }
}

const exporter = new InMemorySpanExporter();

beforeAll(() => {
  context.setGlobalContextManager(new AlsContextManager());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
  );
});

afterAll(() => {
  trace.disable();
  propagation.disable();
  context.disable();
});

describe('OpenTelemetry: traceparent from delay() to the worker', () => {
  it('publish is a child of the caller, run a child of publish, spans in the handler children of run', async () => {
    exporter.reset();
    const app = testApp();
    const tracer = trace.getTracer('test');
    let seenTraceparent: unknown;
    const add = app.task(
      'tasks.add',
      async (ctx, a: number, b: number) => {
        seenTraceparent = ctx.headers.traceparent;
        await tracer.startActiveSpan('inside', async (span) => {
          span.end();
        });
        return a + b;
      },
      { bind: true },
    );
    const fail = app.task('tasks.fail', () => {
      throw new Error('boom');
    });
    const worker = app.worker();
    await worker.start();
    let callerTrace = '';
    let callerSpan = '';
    const [r, f] = await tracer.startActiveSpan('caller', async (span) => {
      callerTrace = span.spanContext().traceId;
      callerSpan = span.spanContext().spanId;
      try {
        return [await add.delay(2, 3), await fail.delay()] as const;
      } finally {
        span.end();
      }
    });
    expect(await r.get({ timeout: 5000 })).toBe(5);
    await f.get({ timeout: 5000 }).catch(() => undefined);
    await worker.stop();
    const spans = exporter.getFinishedSpans();
    const byName = (n: string) => spans.find((s) => s.name === n);
    const publish = byName('publish tasks.add');
    const run = byName('run tasks.add');
    const inside = byName('inside');
    expect(publish?.kind).toBe(SpanKind.PRODUCER);
    expect(run?.kind).toBe(SpanKind.CONSUMER);
    for (const s of [publish, run, inside]) expect(s?.spanContext().traceId).toBe(callerTrace);
    expect(publish?.parentSpanContext?.spanId).toBe(callerSpan);
    expect(run?.parentSpanContext?.spanId).toBe(publish?.spanContext().spanId);
    expect(inside?.parentSpanContext?.spanId).toBe(run?.spanContext().spanId);
    expect(seenTraceparent).toBe(`00-${callerTrace}-${publish?.spanContext().spanId}-01`);
    expect(run?.attributes['messaging.message.id']).toBe(r.id);
    const failed = byName('run tasks.fail');
    expect(failed?.status.code).toBe(SpanStatusCode.ERROR);
    expect(failed?.events.some((e) => e.name === 'exception')).toBe(true);
  });

  it('without a caller span the trace starts at publish; a retry continues the same trace', async () => {
    exporter.reset();
    const app = testApp();
    let calls = 0;
    const flaky = app.task(
      'tasks.flaky',
      (ctx) => {
        calls++;
        if (calls === 1) throw ctx.retry({ countdown: 10 });
        return 'ok';
      },
      { bind: true },
    );
    const worker = app.worker();
    await worker.start();
    const r = await flaky.delay();
    expect(await r.get({ timeout: 5000 })).toBe('ok');
    await worker.stop();
    const spans = exporter.getFinishedSpans();
    const runs = spans.filter((s) => s.name === 'run tasks.flaky');
    const publishes = spans.filter((s) => s.name === 'publish tasks.flaky');
    expect(runs).toHaveLength(2);
    expect(publishes).toHaveLength(2);
    const traceId = publishes[0]?.spanContext().traceId;
    expect(publishes[0]?.parentSpanContext).toBeUndefined();
    for (const s of [...runs, ...publishes]) expect(s.spanContext().traceId).toBe(traceId);
    // The retry is not a failure of the run.
    expect(runs[0]?.status.code).not.toBe(SpanStatusCode.ERROR);
  });
});
