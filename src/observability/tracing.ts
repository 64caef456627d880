/**
 * OpenTelemetry trace context through task messages. Only `@opentelemetry/api` is used: with no SDK
 * registered every call here is a no-op (no spans, no headers); with one, `delay()` opens a
 * `publish <task>` span (a child of the caller's active span) and writes its W3C `traceparent`
 * (and `tracestate`) into the message headers, and the worker runs the handler in a `run <task>`
 * span that is a child of it, with that span active, so spans the handler opens nest under it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Context, Span } from '@opentelemetry/api';
import {
  context,
  ProxyTracerProvider,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { SW_VERSION } from './events/util.js';

/** Errors that end a run without it having failed (Celery's sentinels). */
const NOT_FAILURES = new Set(['Retry', 'Ignore', 'Reject']);

const tracer = () => trace.getTracer('celeriac', SW_VERSION);

/** The API's own no-op provider: what a ProxyTracerProvider delegates to until an SDK registers. */
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

/** True once an OpenTelemetry SDK has registered a tracer provider (checked per call: it may come later). */
function sdkRegistered(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NOOP_PROVIDER;
}

/**
 * The publish span's context while a publish builds its messages. Kept here rather than in the
 * global context manager, so the header carries the publish span even when the app registered
 * no context manager.
 */
const publishing = new AsyncLocalStorage<Context>();

function hasSpan(ctx: Context): boolean {
  return trace.getSpan(ctx) !== undefined;
}

/**
 * Runs `fn` (which builds and sends messages for `tasks`) in a producer span named `publish
 * <task>`. Its parent is the active span, else the trace context already in the first message's
 * headers (a retry continues its original trace).
 */
export async function withPublishSpan<T>(
  tasks: readonly string[],
  carried: Readonly<Record<string, unknown>> | undefined,
  fn: () => Promise<T>,
): Promise<T> {
  // No SDK and no trace to continue: no span object at all (this runs once per publish).
  if (!sdkRegistered() && typeof carried?.traceparent !== 'string' && !hasSpan(context.active())) return fn();
  let parent = context.active();
  if (!hasSpan(parent) && carried && typeof carried.traceparent === 'string')
    parent = propagation.extract(ROOT_CONTEXT, carried);
  const first = tasks[0] ?? 'task';
  const span = tracer().startSpan(
    tasks.length === 1 ? `publish ${first}` : `publish ${first} (+${tasks.length - 1})`,
    {
      kind: SpanKind.PRODUCER,
      attributes: {
        'messaging.system': 'celery',
        'messaging.operation': 'publish',
        'celery.task_name': first,
        'messaging.batch.message_count': tasks.length,
      },
    },
    parent,
  );
  // No SDK registered and no trace to continue: nothing to record or inject (once per publish).
  if (!span.isRecording() && !hasSpan(parent)) return fn();
  try {
    const out = await publishing.run(trace.setSpan(parent, span), fn);
    span.end();
    return out;
  } catch (err) {
    endWithError(span, err);
    throw err;
  }
}

/**
 * The headers of a message with the trace context of the publish in progress (`traceparent`,
 * `tracestate`) when tracing is on; otherwise `headers` itself, so a message looks exactly like
 * Celery's. `headers` is never changed.
 */
export function publishHeaders(headers: Record<string, unknown>): Record<string, unknown> {
  const ctx = publishing.getStore() ?? context.active();
  if (!hasSpan(ctx)) return headers;
  const out: Record<string, unknown> = { ...headers };
  delete out.traceparent;
  delete out.tracestate;
  propagation.inject(ctx, out);
  return out;
}

/** Whether a run needs a span: an SDK is registered, or the message carries a trace to continue. */
export function runSpanNeeded(headers: Readonly<Record<string, unknown>>): boolean {
  return typeof headers.traceparent === 'string' || sdkRegistered();
}

/**
 * Runs a task's handler in a consumer span `run <task>`, child of the trace context in the message
 * headers, with the span active. The span records the error of a failed run.
 */
export async function withRunSpan<T>(
  task: string,
  id: string,
  headers: Readonly<Record<string, unknown>>,
  fn: () => T | Promise<T>,
): Promise<T> {
  const carried = typeof headers.traceparent === 'string';
  // No SDK and no trace to continue: no span object at all (this runs once per task).
  if (!carried && !sdkRegistered()) return fn();
  const parent = carried ? propagation.extract(ROOT_CONTEXT, headers) : ROOT_CONTEXT;
  const span = tracer().startSpan(
    `run ${task}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        'messaging.system': 'celery',
        'messaging.operation': 'process',
        'messaging.message.id': id,
        'celery.task_name': task,
        ...(typeof headers.retries === 'number' ? { 'celery.retries': headers.retries } : {}),
      },
    },
    parent,
  );
  // No SDK registered (the API's no-op tracer) and no trace to continue: nothing to record or
  // propagate, so no context switch (this runs once per task).
  if (!span.isRecording() && !carried) return fn();
  try {
    const out = await context.with(trace.setSpan(parent, span), fn);
    span.end();
    return out;
  } catch (err) {
    if (err instanceof Error && NOT_FAILURES.has(err.name)) {
      span.setAttribute('celery.outcome', err.name.toLowerCase());
      span.end();
    } else endWithError(span, err);
    throw err;
  }
}

function endWithError(span: Span, err: unknown): void {
  const error = err instanceof Error ? err : new Error(String(err));
  span.recordException(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
  span.end();
}
