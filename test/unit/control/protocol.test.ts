import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../../src/control/commands.js';
import {
  isFor,
  LamportClock,
  matches,
  parseReply,
  parseRequest,
  REPLY_EXCHANGE,
  replyMessage,
  requestMessage,
} from '../../../src/control/protocol.js';
import { fromKombuEnvelope, toKombuEnvelope } from '../../../src/messages/kombu.js';
import { fixturesDir } from '../../fixtures.js';

interface Captured {
  envelope: { body: string; headers: Record<string, unknown>; properties: Record<string, unknown> };
  body_decoded: Record<string, unknown>;
  raw?: string;
  body_utf8?: string;
}

const redis = JSON.parse(readFileSync(path.join(fixturesDir, 'redis-pidbox.json'), 'utf8')) as {
  requests_captured_via_psubscribe: Captured[];
  raw_replies: Record<string, { ticket: string; messages: Captured[] }>;
};
const amqp = JSON.parse(readFileSync(path.join(fixturesDir, 'amqp-pidbox.json'), 'utf8')) as {
  requests: Array<{ body_raw_utf8: string; properties: { application_headers: Record<string, unknown> } }>;
};

describe('pidbox protocol vs the captured Celery 5.2.6 traffic', () => {
  it('writes requests byte for byte as kombu (ping and active, Redis and AMQP bodies)', () => {
    for (const captured of redis.requests_captured_via_psubscribe) {
      const b = captured.body_decoded as {
        method: string;
        arguments: Record<string, unknown>;
        ticket: string;
        reply_to: { exchange: string; routing_key: string };
      };
      const headers = captured.envelope.headers as { clock: number; expires: number };
      const msg = requestMessage(
        {
          method: b.method,
          arguments: b.arguments,
          destination: null,
          pattern: null,
          matcher: null,
          ticket: b.ticket,
          reply_to: b.reply_to,
        },
        { clock: headers.clock, timeoutMs: 1000, now: headers.expires * 1000 - 1000, priority: 9 },
      );
      expect(msg.body).toBe(Buffer.from(captured.envelope.body, 'base64').toString('utf8'));
      expect(msg.headers.clock).toBe(headers.clock);
      expect(msg.headers.expires as number).toBeCloseTo(headers.expires, 3);
      // The whole envelope, but for the random delivery tag.
      const tag = captured.envelope.properties.delivery_tag as string;
      const env = toKombuEnvelope(
        { ...msg, headers: { clock: headers.clock, expires: headers.expires } },
        { exchange: 'celery.pidbox', routingKey: '', deliveryTag: tag },
      );
      expect(JSON.parse(env)).toEqual(captured.envelope);
    }
    for (const r of amqp.requests) {
      const parsed = parseRequest({
        headers: r.properties.application_headers,
        properties: {},
        priority: 0,
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        body: r.body_raw_utf8,
      });
      const again = requestMessage(parsed, { clock: 1, timeoutMs: 1000 });
      expect(again.body).toBe(r.body_raw_utf8);
    }
  });

  it('parses the captured requests and replies; writes replies as kombu', () => {
    const first = redis.requests_captured_via_psubscribe[0] as Captured;
    const req = parseRequest(fromKombuEnvelope(JSON.stringify(first.envelope)).wire);
    expect(req).toMatchObject({
      method: 'ping',
      arguments: {},
      destination: null,
      ticket: first.body_decoded.ticket,
      clock: 1,
    });
    expect(req.reply_to).toEqual({
      exchange: REPLY_EXCHANGE,
      routing_key: (first.body_decoded.reply_to as { routing_key: string }).routing_key,
    });
    for (const [kind, capture] of Object.entries(redis.raw_replies)) {
      const m = capture.messages[0] as Captured;
      const wire = fromKombuEnvelope(m.raw as string).wire;
      const reply = parseReply(wire);
      expect(reply.ticket).toBe(capture.ticket);
      expect(reply.body).toEqual(m.body_decoded);
      const node = Object.keys(m.body_decoded)[0] as string;
      const ours = replyMessage(node, m.body_decoded[node], {
        ticket: capture.ticket,
        clock: m.envelope.headers.clock as number,
        priority: 9,
      });
      expect(ours.body, kind).toBe(m.body_utf8);
      const env = toKombuEnvelope(ours, {
        exchange: REPLY_EXCHANGE,
        routingKey: (m.envelope.properties.delivery_info as { routing_key: string }).routing_key,
        deliveryTag: m.envelope.properties.delivery_tag as string,
      });
      expect(env).toBe(m.raw);
    }
  });

  it('refuses malformed requests with a reason', () => {
    const bad = (body: string) => () =>
      parseRequest({
        headers: {},
        properties: {},
        priority: 0,
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        body,
      });
    expect(bad('{x')).toThrow(/not JSON/);
    expect(bad('[]')).toThrow(/object/);
    expect(bad('{"method": ""}')).toThrow(/method/);
    expect(bad('{"method": "ping", "arguments": 3}')).toThrow(/arguments/);
    expect(bad('{"method": "ping", "destination": [1]}')).toThrow(/destination/);
    expect(bad('{"method": "ping", "reply_to": {"exchange": "x", "routing_key": "y"}}')).toThrow(/ticket/);
  });

  it('destination, glob and pcre matching as kombu', () => {
    const req = { method: 'ping', arguments: {}, destination: null, pattern: null, matcher: null };
    expect(isFor(req, 'a@h')).toBe(true);
    expect(isFor({ ...req, destination: ['b@h'] }, 'a@h')).toBe(false);
    expect(isFor({ ...req, destination: ['a@h', 'b@h'] }, 'a@h')).toBe(true);
    expect(matches('celeriac@web1', 'celeriac@web?', 'glob')).toBe(true);
    expect(matches('celeriac@web1', 'celery@*', 'glob')).toBe(false);
    expect(matches('celeriac@web1', 'celeriac@w.b', 'pcre')).toBe(true);
    expect(matches('x', '(', 'pcre')).toBe(false);
  });

  it('Lamport clock: forward, adjust to max + 1', () => {
    const c = new LamportClock();
    expect(c.forward()).toBe(1);
    expect(c.adjust(10)).toBe(11);
    expect(c.adjust(3)).toBe(12);
  });

  it("knows Celery's command names", () => {
    for (const name of [
      'ping',
      'active',
      'reserved',
      'scheduled',
      'registered',
      'stats',
      'query_task',
      'revoked',
      'revoke',
      'terminate',
      'rate_limit',
      'time_limit',
      'shutdown',
      'pool_grow',
      'pool_shrink',
      'add_consumer',
      'cancel_consumer',
      'active_queues',
      'clock',
      'hello',
    ])
      expect(COMMANDS[name], name).toBeTypeOf('function');
  });
});
