import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { ClosedError } from '../../src/errors.js';
import type { ResultMeta, TaskState } from '../../src/results/meta.js';
import type { ResultSink } from '../../src/results/sink.js';

/** What an adapter's test file hands the suite: a sink, and how to tidy up after it. */
export interface SinkFixture {
  sink: ResultSink;
  cleanup?: () => Promise<void>;
}

export interface SinkContractOptions {
  /** How long to wait for something that must happen (default 5000 ms). */
  waitMs?: number;
  /** How long to watch for something that must not happen (default 150 ms). */
  quietMs?: number;
}

const DAY = 86_400_000;

/** A result meta in Celery's shape; exceptions for FAILURE/RETRY/REVOKED, a value otherwise. */
function meta(taskId: string, status: TaskState, result: unknown = null): ResultMeta {
  const failed = status === 'FAILURE' || status === 'RETRY' || status === 'REVOKED';
  const ready = status === 'SUCCESS' || status === 'FAILURE' || status === 'REVOKED';
  return {
    status,
    result: failed ? { exc_type: 'ValueError', exc_message: ['boom'], exc_module: 'builtins' } : result,
    traceback: failed ? 'Traceback (most recent call last):\n  ...\nValueError: boom' : null,
    children: [],
    date_done: ready ? new Date().toISOString() : null,
    task_id: taskId,
  };
}

/**
 * The result sink contract: the behaviour every result adapter keeps (see `src/results/sink.ts`).
 *
 * `make` is called once or more per test; sinks made within one test must reach the same store.
 * Task ids and counter keys are random per test. After each test every sink made is closed and each
 * `cleanup` runs.
 *
 * @example
 * // test/integration/redis-results.test.ts
 * sinkContract('redis', async () => ({ sink: createResultSink(new URL('redis://localhost:6379/1'), {}) }));
 */
export function sinkContract(
  name: string,
  make: () => Promise<SinkFixture>,
  options: SinkContractOptions = {},
): void {
  const waitMs = options.waitMs ?? 5000;
  const quietMs = options.quietMs ?? 150;

  describe(`result sink contract: ${name}`, () => {
    const made: SinkFixture[] = [];

    async function open(): Promise<ResultSink> {
      const fixture = await make();
      made.push(fixture);
      await fixture.sink.connect();
      return fixture.sink;
    }

    afterEach(async () => {
      for (const fixture of made) await fixture.sink.close();
      for (const fixture of made) await fixture.cleanup?.();
      made.length = 0;
    });

    const newId = (): string => randomUUID();

    /** Tracks a promise's outcome without awaiting it. */
    function track<T>(promise: Promise<T>): { readonly done: boolean; readonly promise: Promise<T> } {
      const state = { done: false, promise };
      promise.then(
        () => {
          state.done = true;
        },
        () => {
          state.done = true;
        },
      );
      return state;
    }

    async function eventually(check: () => boolean, what: string): Promise<void> {
      const deadline = Date.now() + waitMs;
      while (!check()) {
        if (Date.now() > deadline) throw new Error(`timed out after ${waitMs} ms waiting for ${what}`);
        await sleep(5);
      }
    }

    it('has a kind, says whether it is shared, and is healthy once connected', async () => {
      const sink = await open();
      expect(typeof sink.kind).toBe('string');
      expect(sink.kind.length).toBeGreaterThan(0);
      expect(typeof sink.shared).toBe('boolean');
      await sink.connect();
      expect(sink.health()).toMatchObject({ status: 'healthy' });
    });

    it('stores and gets a result; a later store overwrites it', async () => {
      const sink = await open();
      const id = newId();
      const started = meta(id, 'STARTED');
      await sink.store(started, { expiresMs: DAY });
      expect(await sink.get(id)).toEqual(started);
      const done = {
        ...meta(id, 'SUCCESS', { sum: 5, items: [1, 'two', null], nested: { ok: true } }),
        name: 'tasks.add',
      };
      await sink.store(done, { expiresMs: DAY });
      expect(await sink.get(id)).toEqual(done);
      const other = await open();
      expect(await other.get(id)).toEqual(done);
    });

    it('get of an unknown task is null (PENDING)', async () => {
      const sink = await open();
      expect(await sink.get(newId())).toBeNull();
    });

    for (const ready of ['SUCCESS', 'FAILURE', 'REVOKED'] as const) {
      it(`wait resolves when ${ready} is stored later, not on STARTED, RETRY or a progress state`, async () => {
        const waiter = await open();
        const writer = await open();
        const id = newId();
        const waiting = track(waiter.wait(id, {}));
        await sleep(20); // let the waiter subscribe first, as a real caller would be
        await writer.store(meta(id, 'STARTED'), { expiresMs: DAY });
        await writer.store(meta(id, 'RETRY'), { expiresMs: DAY });
        await writer.store(meta(id, 'PROGRESS', { done: 3, total: 10 }), { expiresMs: DAY });
        await sleep(quietMs);
        expect(waiting.done).toBe(false);
        const final = meta(id, ready, 5);
        await writer.store(final, { expiresMs: DAY });
        expect(await waiting.promise).toEqual(final);
      });
    }

    it('wait resolves at once when a ready state is already stored', async () => {
      const sink = await open();
      const id = newId();
      const done = meta(id, 'SUCCESS', 'ok');
      await sink.store(done, { expiresMs: DAY });
      expect(await sink.wait(id, {})).toEqual(done);
    });

    it('wait rejects with the signal reason when aborted (and at once if aborted already)', async () => {
      const sink = await open();
      const id = newId();
      const controller = new AbortController();
      const waiting = sink.wait(id, { signal: controller.signal });
      const reason = new Error('caller gave up');
      controller.abort(reason);
      await expect(waiting).rejects.toBe(reason);
      await expect(sink.wait(id, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
      // An aborted wait leaves nothing behind that would fire later.
      await sink.store(meta(id, 'SUCCESS'), { expiresMs: DAY });
    });

    it('watch sees every state stored from now on, in order, until unsubscribed', async () => {
      const sink = await open();
      const writer = await open();
      const id = newId();
      const seen: TaskState[] = [];
      const stop = await sink.watch(id, (m) => seen.push(m.status));
      await sleep(20);
      for (const status of ['STARTED', 'PROGRESS', 'RETRY', 'STARTED', 'SUCCESS']) {
        await writer.store(meta(id, status), { expiresMs: DAY });
      }
      await eventually(() => seen.length >= 5, '5 states');
      expect(seen).toEqual(['STARTED', 'PROGRESS', 'RETRY', 'STARTED', 'SUCCESS']);
      await stop();
      await writer.store(meta(id, 'FAILURE'), { expiresMs: DAY });
      await sleep(quietMs);
      expect(seen).toHaveLength(5);
    });

    it('forget deletes the result', async () => {
      const sink = await open();
      const id = newId();
      await sink.store(meta(id, 'SUCCESS', 1), { expiresMs: DAY });
      await sink.forget(id);
      expect(await sink.get(id)).toBeNull();
      await sink.forget(newId()); // forgetting an unknown task is fine
    });

    it('a result expires after expiresMs', async () => {
      const sink = await open();
      const id = newId();
      await sink.store(meta(id, 'SUCCESS', 1), { expiresMs: 50 });
      expect(await sink.get(id)).not.toBeNull();
      await sleep(100);
      expect(await sink.get(id)).toBeNull();
    });

    it('incr is atomic under concurrency and returns the new value', async () => {
      const sink = await open();
      const other = await open();
      const key = `contract.counter.${newId()}`;
      const values = await Promise.all(
        Array.from({ length: 100 }, (_, i) => (i % 2 ? sink : other).incr(key, 1, { expiresMs: DAY })),
      );
      expect([...values].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
      expect(await sink.incr(key, 0, { expiresMs: DAY })).toBe(100);
      expect(await sink.incr(key, -5, { expiresMs: DAY })).toBe(95);
    });

    it('a counter expires after expiresMs and starts again', async () => {
      const sink = await open();
      const key = `contract.counter.${newId()}`;
      expect(await sink.incr(key, 3, { expiresMs: 50 })).toBe(3);
      await sleep(100);
      expect(await sink.incr(key, 1, { expiresMs: DAY })).toBe(1);
    });

    it('close rejects pending waits; after close it is unhealthy ("closed") and refuses work', async () => {
      const sink = await open();
      const id = newId();
      const waiting = sink.wait(id, {});
      await sink.close();
      await expect(waiting).rejects.toBeInstanceOf(ClosedError);
      expect(sink.health()).toMatchObject({ status: 'unhealthy', reason: 'closed' });
      await sink.close();
      await expect(sink.get(id)).rejects.toBeInstanceOf(ClosedError);
      await expect(sink.store(meta(id, 'SUCCESS'), { expiresMs: DAY })).rejects.toBeInstanceOf(ClosedError);
      await expect(sink.wait(id, {})).rejects.toBeInstanceOf(ClosedError);
      await expect(sink.incr(id, 1, { expiresMs: DAY })).rejects.toBeInstanceOf(ClosedError);
    });
  });
}
