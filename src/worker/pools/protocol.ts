/**
 * What crosses between the main worker and a pool thread or child process. Both directions carry
 * plain data (structured clone: `postMessage` for threads, `serialization: 'advanced'` IPC for
 * children), so errors and outcomes are flattened here and rebuilt on the other side.
 */
import type { DeadLetter, OutgoingMessage, Subscription } from '../../brokers/transport.js';
import { TaskError } from '../../errors.js';
import type { WireMessage } from '../../messages/types.js';
import { exceptionInfo } from '../../results/exceptions.js';
import type { ResultMeta, TaskState } from '../../results/meta.js';
import type { Outcome } from '../execute.js';

/** What a thread or child learns of the main worker before it imports the app (see child-runtime.ts). */
export interface BootInfo {
  /** file:// URL of the app module. */
  appModule: string;
  /** The main worker's transport: its kind and the priority it gives messages sent without one. */
  transport: {
    kind: string;
    shared: boolean;
    defaultPriority: number;
    fanout: boolean;
    revocations: boolean;
  };
  /** The main worker's result sink, or null when it has none. */
  sink: { kind: string; shared: boolean } | null;
}

/** One task run as a thread or child receives it (the hard limit stays with the parent, which kills). */
export interface RunSpec {
  name: string;
  id: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  headers: Record<string, unknown>;
  retries: number;
  queue: string;
  hostname: string;
  event: string | null;
  softMs: number | null;
}

/** An error flattened for the crossing: enough to rebuild the same FAILURE meta on the other side. */
export interface WireError {
  /** The name Celery's `exc_type` is made of (the class name when `name` was left as 'Error'). */
  name: string;
  message: string;
  stack?: string | undefined;
  code?: string | undefined;
  cause?: WireError | undefined;
  /** Set for a TaskError (a failure of another task, maybe Python's): its own Celery fields. */
  task?: {
    taskId: string;
    excType: string;
    excMessage: unknown[];
    excModule: string | null;
    traceback: string | null;
  };
}

export type WireOutcome =
  | { kind: 'success'; value: unknown }
  | { kind: 'failure'; error: WireError }
  | { kind: 'retry'; error: WireError | null; countdownMs: number }
  | { kind: 'reject'; reason: string; requeue: boolean }
  | { kind: 'ignore'; reason: string };

/**
 * Calls a thread or child makes on the main worker, as signatures. The transport and
 * sink calls are those of the app's proxies (proxies.ts); `run.updateState` is `ctx.updateState`.
 */
export interface HostCalls {
  'transport.publish': (messages: OutgoingMessage[]) => Promise<void>;
  'transport.depth': (queue: string) => Promise<number>;
  'transport.purge': (queue: string) => Promise<number>;
  'deadLetters.list': (queue: string, options?: { limit?: number }) => Promise<DeadLetter[]>;
  'deadLetters.replay': (queue: string, options?: { ids?: readonly string[] }) => Promise<number>;
  'deadLetters.purge': (queue: string) => Promise<number>;
  'subscriptions.add': (event: string, subscription: Subscription) => Promise<void>;
  'subscriptions.remove': (event: string, subscription: Subscription) => Promise<void>;
  'subscriptions.list': (event: string) => Promise<Subscription[]>;
  'fanout.publish': (exchange: string, routingKey: string, message: WireMessage) => Promise<void>;
  'revocations.add': (ids: string[], expiresAt: number) => Promise<void>;
  'revocations.list': () => Promise<string[]>;
  'sink.store': (meta: ResultMeta, options: { expiresMs: number }) => Promise<void>;
  'sink.get': (taskId: string) => Promise<ResultMeta | null>;
  'sink.wait': (taskId: string) => Promise<ResultMeta>;
  'sink.forget': (taskId: string) => Promise<void>;
  'sink.incr': (key: string, by: number, options: { expiresMs: number }) => Promise<number>;
  'run.updateState': (runId: number, state: TaskState, meta: unknown) => Promise<void>;
}

/** Subscriptions a thread or child opens on the main worker: `[args, event]` per method. */
export interface HostStreams {
  'sink.watch': [[taskId: string], ResultMeta];
  'fanout.subscribe': [[exchange: string, bindingKey: string], [message: WireMessage, routingKey: string]];
}

export type HostMethod = keyof HostCalls;
export type HostStream = keyof HostStreams;

/** Parent → thread/child. */
export type ToChild =
  | { t: 'run'; runId: number; spec: RunSpec }
  | { t: 'reply'; cid: number; ok: true; value: unknown }
  | { t: 'reply'; cid: number; ok: false; error: WireError }
  | { t: 'event'; cid: number; value: unknown }
  | { t: 'exit' };

/** Thread/child → parent. */
export type ToParent =
  | { t: 'ready' }
  | { t: 'failed'; error: WireError }
  | { t: 'call'; cid: number; method: HostMethod; args: unknown[] }
  | { t: 'subscribe'; cid: number; method: HostStream; args: unknown[] }
  | { t: 'unsubscribe'; cid: number }
  | { t: 'cancel'; cid: number }
  | { t: 'done'; runId: number; outcome: WireOutcome; memory: number };

const MAX_CAUSES = 10;

/** Flattens anything thrown into a WireError (the cause chain too, up to 10 deep). */
export function toWireError(err: unknown, depth = 0): WireError {
  const error = err instanceof Error ? err : new Error(String(err));
  const out: WireError = { name: exceptionInfo(error).exc_type, message: error.message, stack: error.stack };
  // Duck-typed: the app in a thread may hold another copy of the errors module (src and dist).
  const t = error as Partial<TaskError>;
  if (typeof t.taskId === 'string' && typeof t.excType === 'string' && Array.isArray(t.excMessage)) {
    out.name = error.name;
    out.task = {
      taskId: t.taskId,
      excType: t.excType,
      excMessage: [...t.excMessage],
      excModule: t.excModule ?? null,
      traceback: t.traceback ?? null,
    };
  }
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') out.code = code;
  if (error.cause !== undefined && error.cause !== null && depth < MAX_CAUSES)
    out.cause = toWireError(error.cause, depth + 1);
  return out;
}

/**
 * Rebuilds an error from a WireError: a TaskError keeps its Celery fields; any other error becomes an
 * Error with the same name, message, stack and cause chain, which is all `failureMeta` reads, so the
 * stored FAILURE is the one the async pool would store.
 */
export function fromWireError(wire: WireError): Error {
  if (wire.task) {
    const error = new TaskError(wire.task.taskId, wire.task);
    if (wire.stack !== undefined) error.stack = wire.stack;
    return error;
  }
  const error = new Error(
    wire.message,
    wire.cause !== undefined ? { cause: fromWireError(wire.cause) } : undefined,
  );
  error.name = wire.name;
  if (wire.stack !== undefined) error.stack = wire.stack;
  if (wire.code !== undefined) Object.assign(error, { code: wire.code });
  return error;
}

export function toWireOutcome(outcome: Outcome): WireOutcome {
  switch (outcome.kind) {
    case 'failure':
      return { kind: 'failure', error: toWireError(outcome.error) };
    case 'retry':
      return {
        kind: 'retry',
        error: outcome.error ? toWireError(outcome.error) : null,
        countdownMs: outcome.countdownMs,
      };
    default:
      return outcome;
  }
}

export function fromWireOutcome(outcome: WireOutcome): Outcome {
  switch (outcome.kind) {
    case 'failure':
      return { kind: 'failure', error: fromWireError(outcome.error) };
    case 'retry':
      return {
        kind: 'retry',
        error: outcome.error ? fromWireError(outcome.error) : null,
        countdownMs: outcome.countdownMs,
      };
    default:
      return outcome;
  }
}
