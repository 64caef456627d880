import { describe, expect, it } from 'vitest';
import { startDashboard } from '../../../src/dashboard/server.js';
import { Reject } from '../../../src/index.js';
import { testApp, until } from '../../helpers/app.js';

const post = (url: string) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-celeriac-action': '1' },
    body: '{}',
  });

describe('dashboard actions (memory broker)', () => {
  it('retry replays a dead-lettered message when the result store has no args; says why when neither has them', async () => {
    const app = testApp();
    let runs = 0;
    app.task('tasks.picky', (n: number) => {
      runs++;
      if (runs === 1) throw new Reject('not yet');
      return n + 1;
    });
    app.task('tasks.boom', () => {
      throw new Error('boom');
    });
    const worker = app.worker({ events: true });
    await worker.start();
    const dashboard = await startDashboard({ app, port: 0 });
    try {
      const r = await app.sendTask('tasks.picky', [41]);
      await until(() => dashboard.state.tasks.get(r.id)?.state === 'REJECTED', 5000, 'REJECTED');
      const res = await post(`${dashboard.url}api/tasks/${r.id}/retry`);
      expect(await res.json()).toMatchObject({ from: 'dead letters', id: r.id });
      expect(await r.get({ timeout: 5000 })).toBe(42);
      await until(() => dashboard.state.tasks.get(r.id)?.state === 'SUCCESS', 5000, 'SUCCESS after replay');
      // No resultExtended and nothing dead-lettered: the page is told why it cannot retry.
      const f = await app.sendTask('tasks.boom', []);
      await f.get({ timeout: 5000 }).catch(() => undefined);
      await until(() => dashboard.state.tasks.get(f.id)?.state === 'FAILURE', 5000, 'FAILURE');
      const refused = await post(`${dashboard.url}api/tasks/${f.id}/retry`);
      expect(refused.status).toBe(409);
      expect(((await refused.json()) as { error: string }).error).toMatch(/resultExtended/);
      // The detail endpoint has the stored result next to the events.
      const detail = (await (await fetch(`${dashboard.url}api/tasks/${f.id}`)).json()) as {
        task: { state: string };
        meta: { status: string };
      };
      expect(detail.task.state).toBe('FAILURE');
      expect(detail.meta.status).toBe('FAILURE');
    } finally {
      await dashboard.close();
      await worker.stop();
    }
  });
});
