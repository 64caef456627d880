import { describe, expect, it } from 'vitest';
import { MalformedMessageError, PayloadError } from '../../../src/errors.js';
import {
  buildTaskMessage,
  decodeTask,
  encodeTask,
  formatCeleryDate,
  LANG,
  naiveIso,
  parseCeleryDate,
} from '../../../src/messages/codec.js';
import type { SignatureJson, WireMessage } from '../../../src/messages/types.js';
import { amqpTaskMessages, type JsonObject, loadFixture, redisEnvelopes } from '../../fixtures.js';

/** A WireMessage straight from a captured kombu envelope (no kombu.ts involved). */
function wireFromEnvelope(env: JsonObject): WireMessage {
  const props = env.properties as JsonObject;
  const body =
    props.body_encoding === 'base64'
      ? Buffer.from(env.body as string, 'base64').toString('utf8')
      : (env.body as string);
  const { delivery_info: _i, priority: _p, body_encoding: _b, delivery_tag: _t, ...properties } = props;
  return {
    headers: env.headers as JsonObject,
    properties,
    priority: 9 - ((props.priority as number | undefined) ?? 0),
    contentType: env['content-type'] as string,
    contentEncoding: env['content-encoding'] as string,
    body,
  };
}

function wireFromAmqp(m: ReturnType<typeof amqpTaskMessages>[number]): WireMessage {
  const { application_headers: _h, content_type, content_encoding, priority, ...properties } = m.properties;
  return {
    headers: m.headers,
    properties,
    priority: (priority as number | undefined) ?? 0,
    contentType: content_type as string,
    contentEncoding: content_encoding as string,
    body: m.body,
  };
}

const redisTasks = redisEnvelopes().filter((e) => e.isTask);
const amqpTasks = amqpTaskMessages();

describe('decodeTask → encodeTask round trip on every captured task message', () => {
  it('found the captured messages', () => {
    expect(redisTasks.length).toBeGreaterThanOrEqual(20);
    expect(amqpTasks.length).toBeGreaterThanOrEqual(9);
  });

  it.each(redisTasks.map((m) => [`${m.fixture} ${m.path}`, m] as const))('redis %s', (_name, m) => {
    const wire = wireFromEnvelope(m.envelope);
    const msg = decodeTask(wire);
    const again = encodeTask(msg);
    expect(Object.keys(again.headers)).toEqual(Object.keys(wire.headers));
    expect(again.headers).toEqual(wire.headers);
    expect(again.body).toBe(wire.body);
    expect(Object.keys(again.properties)).toEqual(Object.keys(wire.properties));
    expect(again.properties).toEqual(wire.properties);
    expect(again.priority).toBe(wire.priority);
    expect(again.contentType).toBe('application/json');
    expect(again.contentEncoding).toBe('utf-8');
  });

  it.each(amqpTasks.map((m) => [`${m.fixture} ${m.path}`, m] as const))('amqp %s', (_name, m) => {
    const wire = wireFromAmqp(m);
    const again = encodeTask(decodeTask(wire));
    expect(Object.keys(again.headers)).toEqual(Object.keys(m.headers));
    expect(again.headers).toEqual(m.headers);
    expect(again.body).toBe(m.body);
    expect(again.properties).toEqual(wire.properties);
  });

  it('decodes the fields of a captured message', () => {
    const m = redisTasks.find((e) => e.fixture === 'redis-send_task-kwargs');
    const msg = decodeTask(wireFromEnvelope(m?.envelope as JsonObject));
    expect(msg.args).toEqual([1, 'h\u00e9llo \u2713', null, 1.5, true, [1, { a: 2 }]]);
    expect(msg.kwargs).toEqual({ k: [1, 2], u: '\u00fcn\u00ef', nested: { x: null } });
    expect(msg.headers.task).toBe('tasks.echo');
    expect(msg.embed).toEqual({ callbacks: null, errbacks: null, chain: null, chord: null });
  });
});

describe('buildTaskMessage reproduces what Celery sends', () => {
  // Messages a Python client sent (not worker-published chain steps or retries, whose args are lists).
  const clientSent = redisTasks.filter((m) =>
    (m.envelope.headers as JsonObject).argsrepr?.toString().startsWith('('),
  );

  it.each(clientSent.map((m) => [`${m.fixture} ${m.path}`, m] as const))('%s', (_name, m) => {
    const wire = wireFromEnvelope(m.envelope);
    const h = decodeTask(wire).headers;
    const { args, kwargs, embed } = decodeTask(wire);
    const custom = Object.fromEntries(
      Object.entries(wire.headers).filter(
        ([k]) => !Object.hasOwn(buildTaskMessage({ id: 'x', task: 'y' }).headers, k),
      ),
    );
    const expires = h.expires === null ? null : parseCeleryDate(h.expires);
    const expiration = wire.properties.expiration;
    const {
      correlation_id: _c,
      reply_to: _r,
      delivery_mode: _d,
      expiration: _e,
      ...extraProperties
    } = wire.properties;
    const built = buildTaskMessage({
      id: h.id,
      task: h.task,
      args,
      kwargs,
      eta: h.eta === null ? null : parseCeleryDate(h.eta),
      expires,
      priority: wire.priority,
      retries: h.retries,
      timelimit: h.timelimit,
      rootId: h.root_id,
      parentId: h.parent_id,
      group: h.group,
      groupIndex: h.group_index,
      shadow: h.shadow,
      ignoreResult: h.ignore_result,
      headers: custom,
      callbacks: embed.callbacks,
      errbacks: embed.errbacks,
      chain: embed.chain,
      chord: embed.chord,
      replyTo: wire.properties.reply_to as string,
      origin: h.origin,
      properties: extraProperties,
      ...(expires !== null && typeof expiration === 'string' ? { now: expires - Number(expiration) } : {}),
    });
    const encoded = encodeTask(built);
    expect(encoded.body).toBe(wire.body);
    // Same headers in the same order; lang is ours, and eta/expires carry milliseconds, not micro.
    expect(Object.keys(encoded.headers)).toEqual(Object.keys(wire.headers));
    for (const key of Object.keys(wire.headers)) {
      if (key === 'lang') expect(encoded.headers.lang).toBe(LANG);
      else if ((key === 'eta' || key === 'expires') && typeof wire.headers[key] === 'string') {
        expect(parseCeleryDate(encoded.headers[key] as string)).toBe(
          parseCeleryDate(wire.headers[key] as string),
        );
        expect(encoded.headers[key]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$/);
      } else expect(encoded.headers[key], key).toEqual(wire.headers[key]);
    }
    expect(Object.keys(encoded.properties)).toEqual(Object.keys(wire.properties));
    expect(encoded.properties).toEqual(wire.properties);
    expect(encoded.priority).toBe(wire.priority);
  });

  it('defaults like Celery: root_id = id, timelimit [null, null], reprs, empty embed, no expiration', () => {
    const msg = buildTaskMessage({
      id: 'abc',
      task: 'tasks.add',
      args: [2, 3],
      origin: 'gen1@h',
      replyTo: 'oid',
    });
    expect(msg.headers).toEqual({
      lang: 'js',
      task: 'tasks.add',
      id: 'abc',
      shadow: null,
      eta: null,
      expires: null,
      group: null,
      group_index: null,
      retries: 0,
      timelimit: [null, null],
      root_id: 'abc',
      parent_id: null,
      argsrepr: '(2, 3)',
      kwargsrepr: '{}',
      origin: 'gen1@h',
      ignore_result: false,
    });
    expect(msg.properties).toEqual({ correlation_id: 'abc', reply_to: 'oid', delivery_mode: 2 });
    expect(encodeTask(msg).body).toBe(
      '[[2, 3], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]',
    );
  });

  it('writes expiration as the ms left at send time, never negative', () => {
    const now = Date.UTC(2030, 0, 1);
    expect(buildTaskMessage({ id: 'a', task: 't', expires: now + 300_000, now }).properties.expiration).toBe(
      '300000',
    );
    expect(buildTaskMessage({ id: 'a', task: 't', expires: now - 5, now }).properties.expiration).toBe('0');
  });

  it('keeps custom headers after ignore_result and never lets them replace protocol headers', () => {
    const msg = buildTaskMessage({
      id: 'a',
      task: 't',
      headers: { 'x-custom': 'v', id: 'evil', celeriac_event: 'user.registered' },
    });
    const keys = Object.keys(msg.headers);
    expect(keys.slice(-2)).toEqual(['x-custom', 'celeriac_event']);
    expect(msg.headers.id).toBe('a');
  });

  it('refuses a payload JSON cannot carry, naming the path', () => {
    const msg = buildTaskMessage({ id: 'a', task: 't', args: [1, { when: 10n }] });
    expect(() => encodeTask(msg)).toThrow(PayloadError);
    expect(() => encodeTask(msg)).toThrow('args[1].when: BigInt is not JSON');
    const k = buildTaskMessage({ id: 'a', task: 't', kwargs: { fn: () => 1 } });
    expect(() => encodeTask(k)).toThrow('kwargs.fn: a function is not JSON');
    expect(encodeTask(msg, { allowBigInt: true }).body.startsWith('[[1, {"when": 10}]')).toBe(true);
  });

  it('carries embed signatures as given', () => {
    const sig: SignatureJson = {
      task: 'tasks.mul',
      args: [2],
      kwargs: {},
      options: {},
      subtask_type: null,
      immutable: false,
    };
    const body = encodeTask(buildTaskMessage({ id: 'a', task: 't', args: [1, 2], callbacks: [sig] })).body;
    const captured = loadFixture('redis-options').queue_celery as { body_utf8: string }[];
    expect(captured.some((m) => m.body_utf8.startsWith(body.slice(0, body.indexOf('"errbacks"'))))).toBe(
      true,
    );
  });
});

describe('decodeTask validation', () => {
  const good = (): WireMessage => ({
    headers: { task: 'tasks.add', id: 'i1' },
    properties: {},
    priority: 0,
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    body: '[[2, 3], {}, {}]',
  });
  const refuses = (patch: Partial<WireMessage>, reason: string) => {
    const wire = { ...good(), ...patch };
    expect(() => decodeTask(wire)).toThrow(MalformedMessageError);
    expect(() => decodeTask(wire)).toThrow(reason);
  };

  it('refuses the 2-element body that kills a Celery worker (redis-worker-acceptance)', () => {
    const fatal = (loadFixture('redis-worker-acceptance').fatal_cases as JsonObject[]).find((c) =>
      String(c.case).includes('2 elements'),
    );
    const wire = wireFromEnvelope(fatal?.envelope_lpushed as JsonObject);
    expect(() => decodeTask(wire)).toThrow('body must be [args, kwargs, embed], got 2 elements');
  });

  it('names what is wrong', () => {
    refuses({ body: '[[2, 3], {}' }, 'body is not JSON');
    refuses({ body: '"x"' }, 'body must be [args, kwargs, embed], got a string');
    refuses({ body: '[[1], {}, {}, {}]' }, 'got 4 elements');
    refuses({ body: '[{"a": 1}, {}, {}]' }, 'body[0] (args) must be an array, got an object');
    refuses({ body: '[[], [], {}]' }, 'body[1] (kwargs) must be an object, got an array');
    refuses({ body: '[[], {}, 3]' }, 'body[2] (embed) must be an object or null, got a number (3)');
    refuses({ headers: { id: 'i1' } }, "missing 'task' header");
    refuses({ headers: { task: 'tasks.add' } }, "missing 'id' header");
    refuses({ headers: { task: 5, id: 'i1' } }, "header 'task' must be a task name, got a number (5)");
    refuses(
      { contentType: 'application/x-python-serialize' },
      "content type 'application/x-python-serialize' is not accepted (only application/json)",
    );
    refuses({ contentEncoding: 'binary' }, "content encoding 'binary' is not supported");
    refuses({ headers: { task: 't', id: 'i', retries: '1' } }, "header 'retries' must be an integer or null");
    refuses({ headers: { task: 't', id: 'i', timelimit: [1] } }, "header 'timelimit' must be [hard, soft]");
    refuses(
      { headers: { task: 't', id: 'i', eta: 'tomorrow' } },
      "header 'eta' must be an ISO-8601 date, got 'tomorrow'",
    );
    refuses(
      { headers: { task: 't', id: 'i', ignore_result: 'yes' } },
      "header 'ignore_result' must be a boolean",
    );
    refuses(
      { body: '[[], {}, {"callbacks": "x"}]' },
      "embed 'callbacks' must be a list of signatures or null",
    );
  });

  it('accepts every hand-made message a Celery worker accepted, with Celery defaults', () => {
    const cases = loadFixture('redis-worker-acceptance').cases as JsonObject[];
    expect(cases.length).toBeGreaterThanOrEqual(10);
    for (const c of cases) {
      const msg = decodeTask(wireFromEnvelope(c.envelope_lpushed as JsonObject));
      expect(msg.headers.id, String(c.case)).toBe(c.task_id);
      expect(msg.headers.root_id).toBe(c.task_id);
      expect(msg.headers.retries).toBe(0);
      expect(msg.headers.timelimit).toEqual([null, null]);
      expect(Object.keys(msg.embed).slice(0, 4)).toEqual(['callbacks', 'errbacks', 'chain', 'chord']);
    }
  });

  it('fills defaults for a minimal message', () => {
    const msg = decodeTask(good());
    expect(msg.headers).toEqual({
      lang: 'py',
      task: 'tasks.add',
      id: 'i1',
      shadow: null,
      eta: null,
      expires: null,
      group: null,
      group_index: null,
      retries: 0,
      timelimit: [null, null],
      root_id: 'i1',
      parent_id: null,
      argsrepr: '(2, 3)',
      kwargsrepr: '{}',
      origin: '',
      ignore_result: false,
    });
    expect(msg.embed).toEqual({ callbacks: null, errbacks: null, chain: null, chord: null });
  });

  it('converts protocol v1 (redis-worker-acceptance) to the v2 model', () => {
    const v1 = (loadFixture('redis-worker-acceptance').cases as JsonObject[]).find((c) =>
      String(c.case).includes('protocol v1'),
    );
    const msg = decodeTask(wireFromEnvelope(v1?.envelope_lpushed as JsonObject));
    expect(msg.headers.task).toBe('tasks.add');
    expect(msg.headers.id).toBe(v1?.task_id);
    expect(msg.args).toEqual([2, 3]);
    expect(msg.kwargs).toEqual({});
    expect(msg.headers.argsrepr).toBe('(2, 3)');
    const withOptions = decodeTask({
      ...good(),
      headers: {},
      body: '{"task": "t", "id": "i", "args": [1], "kwargs": {"a": 1}, "retries": 2, "eta": "2020-01-01T00:00:00", "taskset": "g", "callbacks": [{"task": "cb", "args": [], "kwargs": {}, "options": {}, "subtask_type": null, "immutable": false}]}',
    });
    expect(withOptions.headers).toMatchObject({
      task: 't',
      id: 'i',
      retries: 2,
      group: 'g',
      eta: '2020-01-01T00:00:00',
    });
    expect(withOptions.embed.callbacks?.[0]?.task).toBe('cb');
  });

  it('keeps integers beyond 2^53 exact', () => {
    const msg = decodeTask({ ...good(), body: '[[12345678901234567890], {}, {}]' });
    expect(msg.args).toEqual([12345678901234567890n]);
    expect(encodeTask(msg, { allowBigInt: true }).body).toBe(
      '[[12345678901234567890], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]',
    );
  });
});

describe('dates', () => {
  it('formats like Python isoformat (microseconds, +00:00; no fraction when zero)', () => {
    expect(formatCeleryDate(Date.UTC(2030, 0, 2, 3, 4, 5, 678))).toBe('2030-01-02T03:04:05.678000+00:00');
    expect(formatCeleryDate(Date.UTC(2030, 0, 1))).toBe('2030-01-01T00:00:00+00:00');
    expect(naiveIso(Date.UTC(2026, 10, 24, 23, 18, 12, 810))).toBe('2026-11-24T23:18:12.810000');
  });

  it('parses every eta/expires Celery wrote, and naive / Z forms', () => {
    expect(parseCeleryDate('2030-01-02T03:04:05.678901+00:00')).toBe(Date.UTC(2030, 0, 2, 3, 4, 5, 678));
    expect(parseCeleryDate('2030-01-02T03:04:05+02:00')).toBe(Date.UTC(2030, 0, 2, 1, 4, 5));
    expect(parseCeleryDate('2030-01-02T03:04:05-05:30')).toBe(Date.UTC(2030, 0, 2, 8, 34, 5));
    expect(parseCeleryDate('2020-01-01T00:00:00')).toBe(Date.UTC(2020, 0, 1));
    expect(parseCeleryDate('2020-01-01T00:00:00Z')).toBe(Date.UTC(2020, 0, 1));
    expect(parseCeleryDate('2020-01-01 00:00:00.5')).toBe(Date.UTC(2020, 0, 1, 0, 0, 0, 500));
    let seen = 0;
    for (const m of redisTasks) {
      const h = m.envelope.headers as JsonObject;
      for (const key of ['eta', 'expires']) {
        const v = h[key];
        if (typeof v !== 'string') continue;
        expect(Number.isFinite(parseCeleryDate(v))).toBe(true);
        seen++;
      }
    }
    expect(seen).toBeGreaterThanOrEqual(5);
  });

  it('refuses what is not a date', () => {
    expect(() => parseCeleryDate('tomorrow')).toThrow(MalformedMessageError);
    expect(() => parseCeleryDate('2030-02-30T00:00:00')).toThrow("not a valid date: '2030-02-30T00:00:00'");
    expect(() => parseCeleryDate('2030-01-01T25:00:00')).toThrow('not a valid date');
  });
});
