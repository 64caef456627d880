import { describe, expect, it } from 'vitest';
import { describe as line } from '../../../src/cli/events.js';
import { fromKombuEnvelope } from '../../../src/messages/kombu.js';
import { decodeEvents } from '../../../src/observability/events/codec.js';
import { loadFixture } from '../../fixtures.js';

describe('celeriac events: one line per event', () => {
  it("reads as a person reads Celery's captured events", () => {
    const fixture = loadFixture('redis-events') as unknown as { messages: Array<{ data: string }> };
    const names = new Map<string, string>();
    const lines = fixture.messages.flatMap((m) =>
      decodeEvents(fromKombuEnvelope(m.data).wire).map((e) => line(e, names)),
    );
    const ids = (loadFixture('redis-events') as unknown as { task_ids: Record<string, string> }).task_ids;
    expect(lines.find((l) => l.includes('task-succeeded') && l.includes(ids.add as string))).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} peer@vm task-succeeded tasks\.add\[1a49a1cb-[^\]]+\] result=5 runtime=0\.007s$/,
    );
    expect(lines.find((l) => l.includes('task-received') && l.includes(ids.add as string))).toContain(
      'tasks.add[1a49a1cb-81f8-4783-833f-837683c07353] args=(2, 3) kwargs={}',
    );
    expect(lines.find((l) => l.includes('task-failed'))).toContain("ValueError('ev')");
    expect(lines.find((l) => l.includes('task-revoked'))).toMatch(/expired$/);
    expect(lines.find((l) => l.includes('worker-online'))).toMatch(/active=0 processed=0 py-celery 5\.2\.6$/);
  });
});
