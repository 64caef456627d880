import { describe, expect, it } from 'vitest';
import { MalformedMessageError } from '../../../src/errors.js';
import { decodeTask, encodeTask } from '../../../src/messages/codec.js';
import { dumps, loads } from '../../../src/messages/json.js';
import {
  fromKombuEnvelope,
  fromKombuPriority,
  kombuPriorityQueue,
  kombuQueueKeys,
  toKombuEnvelope,
  toKombuPriority,
} from '../../../src/messages/kombu.js';
import { type JsonObject, loadFixture, redisEnvelopes } from '../../fixtures.js';

const envelopes = redisEnvelopes();

describe('kombu envelope round trip on every captured Redis envelope', () => {
  it('found task envelopes and others (pidbox replies)', () => {
    expect(envelopes.filter((e) => e.isTask).length).toBeGreaterThanOrEqual(20);
    expect(envelopes.filter((e) => !e.isTask).length).toBeGreaterThanOrEqual(1);
  });

  it.each(envelopes.map((e) => [`${e.fixture} ${e.path}`, e] as const))(
    '%s re-encodes byte for byte',
    (_name, e) => {
      const parsed = fromKombuEnvelope(e.raw);
      const props = e.envelope.properties as JsonObject;
      const info = props.delivery_info as JsonObject;
      expect(parsed.deliveryTag).toBe(props.delivery_tag);
      expect(parsed.exchange).toBe(info.exchange);
      expect(parsed.routingKey).toBe(info.routing_key);
      expect(parsed.redelivered).toBe(info.redelivered === true);
      expect(parsed.wire.priority).toBe(9 - (props.priority as number));
      expect(parsed.wire.body).toBe(Buffer.from(e.envelope.body as string, 'base64').toString('utf8'));
      const raw = toKombuEnvelope(parsed.wire, {
        exchange: parsed.exchange,
        routingKey: parsed.routingKey,
        deliveryTag: parsed.deliveryTag as string,
        redelivered: parsed.redelivered,
      });
      expect(raw).toBe(e.raw);
    },
  );

  it.each(envelopes.filter((e) => e.isTask).map((e) => [`${e.fixture} ${e.path}`, e] as const))(
    '%s survives envelope → task → envelope',
    (_name, e) => {
      const parsed = fromKombuEnvelope(e.raw);
      const wire = encodeTask(decodeTask(parsed.wire));
      expect(
        toKombuEnvelope(wire, {
          exchange: parsed.exchange,
          routingKey: parsed.routingKey,
          deliveryTag: parsed.deliveryTag as string,
          redelivered: parsed.redelivered,
        }),
      ).toBe(e.raw);
    },
  );

  it('re-encodes the unacked hash entries ([envelope, exchange, routing_key]) of redis-retry', () => {
    const hash = (loadFixture('redis-retry').unacked_hash as JsonObject).raw as Record<string, string>;
    const entries = Object.entries(hash);
    expect(entries.length).toBe(1);
    for (const [tag, text] of entries) {
      const [env, exchange, routingKey] = loads(text) as [unknown, string, string];
      const envText = dumps(env);
      const parsed = fromKombuEnvelope(envText);
      expect(parsed.deliveryTag).toBe(tag);
      const again = toKombuEnvelope(parsed.wire, { exchange, routingKey, deliveryTag: tag });
      expect(`[${again}, ${dumps(exchange)}, ${dumps(routingKey)}]`).toBe(text);
      // The retry's extra properties keep their place.
      expect(Object.keys(parsed.wire.properties)).toEqual([
        'correlation_id',
        'reply_to',
        'replaced_task_nesting',
        'origin',
        'delivery_mode',
      ]);
    }
  });

  it('keeps the expiration property where kombu puts it', () => {
    const e = envelopes.find((x) => x.fixture === 'redis-expires');
    const parsed = fromKombuEnvelope(e?.raw as string);
    expect(Object.keys(parsed.wire.properties)).toEqual([
      'correlation_id',
      'reply_to',
      'delivery_mode',
      'expiration',
    ]);
    expect(e?.raw).toMatch(/"delivery_mode": 2, "expiration": "\d+", "delivery_info"/);
  });
});

describe('priorities', () => {
  it('maps API priority (9 most urgent) to kombu wire priority (0 first) and back', () => {
    for (let p = 0; p <= 9; p++) expect(fromKombuPriority(toKombuPriority(p))).toBe(p);
    expect(toKombuPriority(9)).toBe(0);
    expect(toKombuPriority(0)).toBe(9);
    expect(toKombuPriority(42)).toBe(0);
    expect(toKombuPriority(-3)).toBe(9);
  });

  it('puts messages on the sub-queue Celery used for each captured priority (redis-priority)', () => {
    const queues = loadFixture('redis-priority').queues as Record<string, JsonObject[]>;
    let seen = 0;
    for (const list of Object.values(queues)) {
      for (const m of list) {
        const wirePriority = (m.envelope as { properties: { priority: number } }).properties.priority;
        const parsed = fromKombuEnvelope(m.raw as string);
        expect(parsed.wire.priority).toBe(9 - wirePriority);
        expect(kombuPriorityQueue('celery', parsed.wire.priority)).toBe(m.redis_key);
        seen++;
      }
    }
    expect(seen).toBe(7);
  });

  it('lists the keys in the order kombu BRPOPs them', () => {
    expect(kombuQueueKeys('celery')).toEqual(loadFixture('redis-priority').brpop_key_order);
  });
});

describe('fromKombuEnvelope refuses what it cannot read', () => {
  const base = {
    body: 'W1syLCAzXSwge30sIHt9XQ==',
    'content-encoding': 'utf-8',
    'content-type': 'application/json',
    headers: {},
  };
  const withProps = (props: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      ...base,
      ...extra,
      properties: { delivery_info: { exchange: '', routing_key: 'celery' }, ...props },
    });

  it.each([
    ['not JSON', '{"body": ', 'kombu envelope: not JSON'],
    ['not an object', '[1, 2]', 'kombu envelope: not a JSON object'],
    ['missing body', JSON.stringify({ headers: {}, properties: {} }), "kombu envelope: missing 'body'"],
    [
      'non-string body',
      JSON.stringify({ body: 5, properties: {} }),
      "kombu envelope: 'body' must be a string",
    ],
    [
      'bad base64',
      withProps({ body_encoding: 'base64', delivery_tag: 't' }, { body: 'W1sy%%%' }),
      "'body' is not valid base64",
    ],
    [
      'bad UTF-8',
      withProps({ body_encoding: 'base64', delivery_tag: 't' }, { body: '/w==' }),
      'not valid UTF-8',
    ],
    [
      'unknown body_encoding',
      withProps({ body_encoding: 'gzip', delivery_tag: 't' }),
      'unsupported body_encoding "gzip"',
    ],
    [
      'headers not an object',
      withProps({ delivery_tag: 't' }, { headers: [] }),
      "'headers' must be an object",
    ],
  ])('%s', (_name, raw, reason) => {
    expect(() => fromKombuEnvelope(raw)).toThrow(MalformedMessageError);
    expect(() => fromKombuEnvelope(raw)).toThrow(reason);
  });

  it('reports a missing delivery_tag as null instead of failing (it kills a Celery worker)', () => {
    const fatal = (loadFixture('redis-worker-acceptance').fatal_cases as JsonObject[]).find((c) =>
      String(c.case).includes('delivery_tag'),
    );
    const parsed = fromKombuEnvelope(dumps(fatal?.envelope_lpushed));
    expect(parsed.deliveryTag).toBeNull();
    expect(decodeTask(parsed.wire).headers.id).toBe(fatal?.task_id);
  });

  it('accepts every hand-made envelope the Celery worker accepted, plain JSON body included', () => {
    const cases = loadFixture('redis-worker-acceptance').cases as JsonObject[];
    for (const c of cases) {
      const env = c.envelope_lpushed as JsonObject;
      const parsed = fromKombuEnvelope(dumps(env));
      expect(parsed.deliveryTag).toBe((env.properties as JsonObject).delivery_tag);
      expect(decodeTask(parsed.wire).headers.id, String(c.case)).toBe(c.task_id);
    }
    const plain = cases.find((c) => String(c.case).includes('plain JSON'));
    expect(fromKombuEnvelope(dumps(plain?.envelope_lpushed)).wire.body).toBe('[[2, 3], {}, {}]');
  });
});

describe('large bodies', () => {
  it('decodes a valid multi-megabyte base64 body (no regex stack overflow)', () => {
    const big = 'x'.repeat(4 * 1024 * 1024);
    const body = JSON.stringify([[big], {}, { callbacks: null, errbacks: null, chain: null, chord: null }]);
    const raw = JSON.stringify({
      body: Buffer.from(body).toString('base64'),
      'content-encoding': 'utf-8',
      'content-type': 'application/json',
      headers: { task: 't', id: 'big' },
      properties: { body_encoding: 'base64', delivery_tag: 'tag-big' },
    });
    const { wire } = fromKombuEnvelope(raw);
    expect(wire.body.length).toBe(body.length);
    expect(() => fromKombuEnvelope(raw.replace('"body":"', '"body":"!!!!'))).toThrow(/base64/);
  });
});

describe('integers beyond 2^53 in an envelope', () => {
  const envelope = (headers: string, body: string) =>
    `{"body": "${Buffer.from(body).toString('base64')}", "content-encoding": "utf-8", "content-type": "application/json", "headers": ${headers}, "properties": {"correlation_id": "x", "reply_to": "", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "t"}}`;

  it('are kept exactly in headers (the text after the body is checked)', () => {
    const d = fromKombuEnvelope(
      envelope('{"id": "a", "task": "t", "x-big": 12345678901234567890}', '[[], {}, {}]'),
    );
    expect(d.wire.headers['x-big']).toBe(12345678901234567890n);
  });

  it('in the body are left to the body decoder, digits in the base64 text do not matter', () => {
    const body = '[[98765432109876543210], {}, {}]';
    const d = fromKombuEnvelope(envelope('{"id": "a", "task": "t"}', body));
    expect(d.wire.body).toBe(body);
    expect(loads(d.wire.body)).toEqual([[98765432109876543210n], {}, {}]);
    // A body whose base64 text has a run of 16 digits parses the same.
    const digits = `{"body": "1234567890123456789012==", "headers": {"n": 1}, "properties": {}}`;
    expect(() => fromKombuEnvelope(digits)).not.toThrow();
  });
});
