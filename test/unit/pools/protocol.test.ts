import { describe, expect, it } from 'vitest';
import { Ignore, Reject, Retry, SoftTimeLimitExceeded, TaskError } from '../../../src/index.js';
import { failureMeta, retryMeta } from '../../../src/results/exceptions.js';
import type { Outcome } from '../../../src/worker/execute.js';
import {
  fromWireError,
  fromWireOutcome,
  toWireError,
  toWireOutcome,
} from '../../../src/worker/pools/protocol.js';

/** What crossing a thread boundary does to a value: a structured clone. */
const cross = <T>(value: T): T => structuredClone(value);

class QuotaError extends Error {}

describe('errors across the pool boundary', () => {
  it('an error rebuilt on the other side gives the same FAILURE meta (type, module, messages, traceback)', () => {
    const errors: Error[] = [
      new TypeError('bad input'),
      new QuotaError('over quota'), // name left as 'Error': the class name is the type
      new SoftTimeLimitExceeded(200),
      new Error('outer', { cause: new RangeError('inner') }),
      Object.assign(new Error('named'), { name: 'CustomName' }),
    ];
    for (const error of errors) {
      const rebuilt = fromWireError(cross(toWireError(error)));
      const { date_done: _a, ...expected } = failureMeta('id', error);
      const { date_done: _b, ...actual } = failureMeta('id', rebuilt);
      expect(actual).toEqual(expected);
    }
  });

  it('a TaskError (another task failed, maybe in Python) keeps its Celery fields and traceback', () => {
    const error = new TaskError('sub-id', {
      excType: 'ValueError',
      excMessage: ['bad', 1],
      excModule: 'builtins',
      traceback: 'Traceback (most recent call last):\nValueError: bad\n',
    });
    const rebuilt = fromWireError(cross(toWireError(error)));
    expect(rebuilt).toBeInstanceOf(TaskError);
    expect(failureMeta('id', rebuilt).result).toEqual(failureMeta('id', error).result);
    expect(failureMeta('id', rebuilt).traceback).toBe(error.traceback);
  });

  it('keeps a stable error code', () => {
    const rebuilt = fromWireError(cross(toWireError(new SoftTimeLimitExceeded(5))));
    expect((rebuilt as Error & { code?: string }).code).toBe('ERR_SOFT_TIME_LIMIT');
    expect(rebuilt.name).toBe('SoftTimeLimitExceeded');
  });

  it('a thrown non-Error becomes an Error with its text', () => {
    expect(fromWireError(toWireError('plain string')).message).toBe('plain string');
  });

  it('a cause chain is cut at 10 levels (a cycle cannot loop)', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    Object.assign(a, { cause: b });
    let wire = toWireError(a);
    let depth = 0;
    while (wire.cause) {
      wire = wire.cause;
      depth++;
    }
    expect(depth).toBe(10);
  });
});

describe('outcomes across the pool boundary', () => {
  it('every kind crosses, errors included', () => {
    const outcomes: Outcome[] = [
      { kind: 'success', value: { n: 1, list: [1, 'a'] } },
      { kind: 'failure', error: new TypeError('x') },
      { kind: 'retry', error: new QuotaError('later'), countdownMs: 50 },
      { kind: 'retry', error: null, countdownMs: 0 },
      { kind: 'reject', reason: new Reject('no').message, requeue: true },
      { kind: 'ignore', reason: new Ignore().message },
    ];
    for (const outcome of outcomes) {
      const back = fromWireOutcome(cross(toWireOutcome(outcome)));
      expect(back.kind).toBe(outcome.kind);
      if (outcome.kind === 'failure' && back.kind === 'failure') {
        expect(back.error.name).toBe('TypeError');
        expect(back.error.message).toBe('x');
      } else if (outcome.kind === 'retry' && back.kind === 'retry') {
        expect(back.countdownMs).toBe(outcome.countdownMs);
        const { date_done: _a, ...expected } = retryMeta('id', outcome.error);
        const { date_done: _b, ...actual } = retryMeta('id', back.error);
        expect(actual).toEqual(expected);
      } else expect(back).toEqual(outcome);
    }
    expect(new Retry().name).toBe('Retry');
  });
});
