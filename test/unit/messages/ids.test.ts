import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import {
  NAMESPACE_DNS,
  NAMESPACE_OID,
  NAMESPACE_URL,
  originName,
  SUBSCRIBER_NAMESPACE,
  subscriberTaskId,
  threadOid,
  uuid3,
  uuid4,
  uuid5,
} from '../../../src/messages/ids.js';
import { loadFixture } from '../../fixtures.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-([0-9a-f])[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('ids', () => {
  it('uuid4 gives distinct version-4 ids', () => {
    const a = uuid4();
    expect(UUID.exec(a)?.[1]).toBe('4');
    expect(uuid4()).not.toBe(a);
  });

  // Expected values computed with Python's uuid module (uuid.uuid5 / uuid.uuid3).
  it('uuid5 matches Python uuid.uuid5', () => {
    expect(uuid5(NAMESPACE_DNS, 'www.example.com')).toBe('2ed6657d-e927-568b-95e1-2665a8aea6a2');
    expect(uuid5(NAMESPACE_URL, 'h\u00e9llo \u2713')).toBe('8a2f39e9-e920-5c69-bfe0-c491f82bf149');
    expect(uuid5(NAMESPACE_URL, 'https://celeriac.dev/ns/event-subscriber')).toBe(SUBSCRIBER_NAMESPACE);
  });

  it('uuid3 matches Python uuid.uuid3', () => {
    expect(uuid3(NAMESPACE_OID, 'abc')).toBe('5557cd36-6b67-38ac-83fe-825f5905fc15');
  });

  it('refuses a namespace that is not a UUID', () => {
    expect(() => uuid5('nope', 'x')).toThrow("namespace must be a UUID string, got 'nope'");
  });

  it('derives subscriber task ids deterministically from event id and task name', () => {
    const eventId = '6f1c1f3e-2f0b-4c34-9a55-0d5f9d7d1e2a';
    expect(subscriberTaskId(eventId, 'tasks.send_welcome_email')).toBe(
      '62b301af-78d6-51dd-8ba4-c58ed6b1a292',
    );
    expect(subscriberTaskId(eventId, 'tasks.create_trial')).not.toBe(
      subscriberTaskId(eventId, 'tasks.send_welcome_email'),
    );
    expect(subscriberTaskId(uuid4(), 'tasks.x')).toMatch(UUID);
  });

  it('names the origin as Celery does (gen<pid>@<hostname>)', () => {
    expect(originName()).toBe(`gen${process.pid}@${hostname()}`);
    const captured = loadFixture('redis-apply_async-basic').messages as {
      envelope: { headers: { origin: string } };
    }[];
    expect(captured[0]?.envelope.headers.origin).toMatch(/^gen\d+@[^@]+$/);
  });

  it('gives a stable uuid-shaped reply_to oid per process, like the captured reply_to', () => {
    expect(threadOid()).toBe(threadOid());
    expect(UUID.exec(threadOid())?.[1]).toBe('3');
    const captured = loadFixture('redis-apply_async-basic').messages as {
      envelope: { properties: { reply_to: string } };
    }[];
    expect(UUID.exec(captured[0]?.envelope.properties.reply_to ?? '')?.[1]).toBe('3');
  });
});
