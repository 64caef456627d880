import { describe, expect, it } from 'vitest';
import { TaskError, TaskRevokedError } from '../../../src/errors.js';
import { dumps, loads } from '../../../src/messages/json.js';
import {
  excModuleFor,
  failureMeta,
  retryMeta,
  revokedMeta,
  serializeError,
  stateMeta,
  successMeta,
  toTaskError,
} from '../../../src/results/exceptions.js';
import type { ResultMeta } from '../../../src/results/meta.js';
import { type JsonObject, loadFixture, taskMetas } from '../../fixtures.js';

const metas = taskMetas().map((m) => ({ ...m, meta: loads(m.raw) as ResultMeta & Record<string, unknown> }));
const byStatus = (status: string) => metas.filter((m) => m.meta.status === status);

/** The optional fields a captured meta carries, as `extra` for the builders. */
function extraOf(meta: Record<string, unknown>): Partial<ResultMeta> {
  const { status: _s, result: _r, traceback: _t, task_id: _i, ...extra } = meta;
  return extra as Partial<ResultMeta>;
}

describe('result metas are byte-identical to what Celery stored', () => {
  it('found the captured metas', () => {
    expect(byStatus('SUCCESS').length).toBeGreaterThanOrEqual(5);
    expect(byStatus('FAILURE').length).toBeGreaterThanOrEqual(3);
    expect(byStatus('REVOKED').length).toBeGreaterThanOrEqual(1);
    expect(byStatus('RETRY').length).toBeGreaterThanOrEqual(1);
  });

  it('SUCCESS, with group_id, children and extended fields', () => {
    for (const { fixture, raw, meta } of byStatus('SUCCESS')) {
      expect(dumps(successMeta(meta.task_id, meta.result, extraOf(meta))), fixture).toBe(raw);
    }
  });

  it('FAILURE from a Python failure read back as a TaskError', () => {
    for (const { fixture, raw, meta } of byStatus('FAILURE')) {
      const error = toTaskError(meta);
      expect(error).toBeInstanceOf(TaskError);
      expect(dumps(failureMeta(meta.task_id, error, extraOf(meta))), fixture).toBe(raw);
    }
  });

  it('REVOKED for an expired task', () => {
    for (const { raw, meta } of byStatus('REVOKED')) {
      expect(dumps(revokedMeta(meta.task_id, 'expired', extraOf(meta)))).toBe(raw);
    }
  });

  it('RETRY: no result without a cause, date_done null, the retry as the one child', () => {
    const [{ meta }] = byStatus('RETRY') as [(typeof metas)[number]];
    const built = retryMeta(meta.task_id);
    expect(Object.keys(built)).toEqual(Object.keys(meta));
    expect({ ...built, traceback: null }).toEqual({ ...meta, traceback: null });
    expect(built.traceback).toMatch(
      /^Traceback \(most recent call last\):\n[\s\S]*celery\.exceptions\.Retry/,
    );
  });

  it('RETRY with a cause stores its exception', () => {
    const built = retryMeta('id1', new TypeError('flaky'));
    expect(built.result).toEqual({ exc_type: 'TypeError', exc_message: ['flaky'], exc_module: 'builtins' });
    expect(built.traceback).toMatch(/TypeError: flaky\n$/);
  });

  it('ready states get a naive UTC date_done with microseconds; others get null', () => {
    const before = Date.now();
    const done = successMeta('id1', 1).date_done as string;
    expect(done).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?$/);
    expect(Date.parse(`${done}Z`)).toBeGreaterThanOrEqual(before - (before % 1000));
    expect(stateMeta('id1', 'STARTED', { pid: 1, hostname: 'h' })).toEqual({
      status: 'STARTED',
      result: { pid: 1, hostname: 'h' },
      traceback: null,
      children: [],
      date_done: null,
      task_id: 'id1',
    });
  });

  it('orders optional fields as Celery: group_id, parent_id, extended, task_id last', () => {
    const meta = successMeta('t', 5, {
      queue: 'q',
      name: 'n',
      parent_id: 'p',
      group_id: 'g',
      args: [1],
      kwargs: {},
      worker: 'w',
      retries: 0,
    });
    expect(Object.keys(meta)).toEqual([
      'status',
      'result',
      'traceback',
      'children',
      'date_done',
      'group_id',
      'parent_id',
      'name',
      'args',
      'kwargs',
      'worker',
      'retries',
      'queue',
      'task_id',
    ]);
  });
});

describe('serializeError', () => {
  it('uses builtins for Python built-in exception names and celeriac.errors otherwise', () => {
    expect(serializeError(new TypeError('bad')).info).toEqual({
      exc_type: 'TypeError',
      exc_message: ['bad'],
      exc_module: 'builtins',
    });
    expect(serializeError(new RangeError('r')).info).toEqual({
      exc_type: 'RangeError',
      exc_message: ['r'],
      exc_module: 'celeriac.errors',
    });
    expect(serializeError(new Error('e')).info.exc_module).toBe('celeriac.errors');
    class ValueError extends Error {
      override name = 'ValueError';
    }
    expect(serializeError(new ValueError('v')).info).toEqual({
      exc_type: 'ValueError',
      exc_message: ['v'],
      exc_module: 'builtins',
    });
    class QuotaExceeded extends Error {}
    expect(serializeError(new QuotaExceeded('q')).info).toEqual({
      exc_type: 'QuotaExceeded',
      exc_message: ['q'],
      exc_module: 'celeriac.errors',
    });
    expect(excModuleFor('KeyError')).toBe('builtins');
    expect(excModuleFor('SystemExit')).toBe('celeriac.errors');
    expect(excModuleFor('print')).toBe('celeriac.errors');
  });

  it('keeps a TaskError (e.g. a Python failure) as it came', () => {
    const failure = metas.find(
      (m) => m.fixture === 'redis-chord-failure' && m.meta.status === 'FAILURE' && !m.meta.group_id,
    );
    const err = toTaskError(failure?.meta as ResultMeta);
    expect(err.excType).toBe('ChordError');
    expect(err.excModule).toBe('celery.exceptions');
    const { info, traceback } = serializeError(err);
    expect(info).toEqual(failure?.meta.result);
    expect(traceback).toBe(failure?.meta.traceback);
  });

  it('frames the JS stack like a Python traceback, cause first', () => {
    const cause = new Error('root cause');
    const err = new TypeError('bad input', { cause });
    const { traceback } = serializeError(err);
    expect(traceback.startsWith('Traceback (most recent call last):\n')).toBe(true);
    expect(traceback).toMatch(/ {2}File ".*exceptions\.test\.ts", line \d+, in /);
    expect(traceback).toContain(
      'celeriac.errors.Error: root cause\n\nThe above exception was the direct cause of the following exception:\n\n',
    );
    expect(traceback.endsWith('\nTypeError: bad input\n')).toBe(true);
  });

  it('handles thrown non-errors', () => {
    expect(serializeError('plain').info).toEqual({
      exc_type: 'Exception',
      exc_message: ['plain'],
      exc_module: 'builtins',
    });
    expect(serializeError({ code: 7 }).info.exc_message).toEqual(['{"code":7}']);
  });
});

describe('toTaskError', () => {
  it('turns the captured FAILURE into a TaskError with Celery fields', () => {
    const meta = (loadFixture('redis-result-failure').results as JsonObject[])[0]
      ?.decoded as unknown as ResultMeta;
    const err = toTaskError(meta);
    expect(err).toBeInstanceOf(TaskError);
    expect(err).not.toBeInstanceOf(TaskRevokedError);
    expect(err.taskId).toBe(meta.task_id);
    expect(err.excType).toBe('ValueError');
    expect(err.excMessage).toEqual(['boom']);
    expect(err.excModule).toBe('builtins');
    expect(err.traceback).toContain('ValueError: boom');
    expect(err.message).toBe(`task ${meta.task_id} failed: ValueError: boom`);
  });

  it('turns REVOKED into a TaskRevokedError', () => {
    const meta = (loadFixture('redis-events').revoked_result_meta as JsonObject)
      .decoded as unknown as ResultMeta;
    const err = toTaskError(meta);
    expect(err).toBeInstanceOf(TaskRevokedError);
    expect(err.excMessage).toEqual(['expired']);
    expect(toTaskError(revokedMeta('x'))).toBeInstanceOf(TaskRevokedError);
  });

  it('copes with a result that is not an exception dict', () => {
    const err = toTaskError({
      status: 'FAILURE',
      result: 'weird',
      traceback: null,
      children: [],
      date_done: null,
      task_id: 'x',
    });
    expect(err.excType).toBe('UnknownError');
    expect(err.excMessage).toEqual(['weird']);
  });
});
