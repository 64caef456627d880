import { describe, expect, it } from 'vitest';
import { ClusterState } from '../../../src/observability/events/state.js';
import type { CeleryEvent } from '../../../src/observability/events/types.js';

let clock = 0;
function ev(type: string, fields: Record<string, unknown> = {}, hostname = 'w@h'): CeleryEvent {
  clock++;
  return { hostname, utcoffset: 0, pid: 1, clock, timestamp: 1000 + clock, type, ...fields };
}

describe('ClusterState', () => {
  it('a late event never moves a finished task back; a retry round may', () => {
    const s = new ClusterState();
    s.apply(ev('task-received', { uuid: 'a', name: 't', args: '()', kwargs: '{}', retries: 0 }));
    s.apply(ev('task-succeeded', { uuid: 'a', result: '1', runtime: 0.5 }));
    s.apply(ev('task-started', { uuid: 'a' }));
    expect(s.tasks.get('a')).toMatchObject({ state: 'SUCCESS', result: '1', runtime: 0.5, name: 't' });
    s.apply(ev('task-received', { uuid: 'b', name: 't', retries: 0 }));
    s.apply(ev('task-started', { uuid: 'b' }));
    s.apply(ev('task-retried', { uuid: 'b', exception: 'None', traceback: 'tb' }));
    expect(s.tasks.get('b')?.state).toBe('RETRY');
    s.apply(ev('task-received', { uuid: 'b', name: 't', retries: 1 }));
    expect(s.tasks.get('b')).toMatchObject({ state: 'RECEIVED', retries: 1 });
    s.apply(ev('task-failed', { uuid: 'b', exception: "ValueError('x')", traceback: 'tb2' }));
    expect(s.tasks.get('b')).toMatchObject({
      state: 'FAILURE',
      exception: "ValueError('x')",
      traceback: 'tb2',
    });
    expect(s.tasks.get('b')?.timeline.map((t) => t.type)).toEqual([
      'task-received',
      'task-started',
      'task-retried',
      'task-received',
      'task-failed',
    ]);
  });

  it('keeps the newest tasks only, and tracks workers from their heartbeats', () => {
    const s = new ClusterState({ maxTasks: 2 });
    for (const id of ['x', 'y', 'z']) s.apply(ev('task-sent', { uuid: id, name: 't', queue: 'q' }));
    expect([...s.tasks.keys()]).toEqual(['y', 'z']);
    expect(s.tasks.get('z')).toMatchObject({ state: 'PENDING', queue: 'q' });
    const online = s.apply(
      ev(
        'worker-online',
        { freq: 2, active: 0, processed: 0, loadavg: [1, 2, 3], sw_ident: 'py-celery' },
        'n@h',
      ),
    );
    expect(online).toMatchObject({ hostname: 'n@h', online: true, sw_ident: 'py-celery' });
    const w = s.workers.get('n@h');
    expect(w && s.isAlive(w, w.lastHeartbeat + 1)).toBe(true);
    expect(w && s.isAlive(w, w.lastHeartbeat + 10)).toBe(false);
    s.apply(ev('worker-heartbeat', { freq: 2, active: 3, processed: 9 }, 'n@h'));
    expect(s.workers.get('n@h')).toMatchObject({ active: 3, processed: 9, loadavg: [1, 2, 3] });
    s.apply(ev('worker-offline', {}, 'n@h'));
    expect(s.workers.get('n@h')?.online).toBe(false);
    expect(s.apply(ev('something-custom'))).toBeNull();
  });
});
