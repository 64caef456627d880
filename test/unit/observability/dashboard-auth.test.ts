import { describe, expect, it } from 'vitest';
import { parseAuth } from '../../../src/dashboard/auth.js';
import type { DashboardServer } from '../../../src/dashboard/server.js';
import { startDashboard } from '../../../src/dashboard/server.js';
import { testApp } from '../../helpers/app.js';

async function withDashboard(
  auth: Parameters<typeof startDashboard>[0]['auth'],
  fn: (d: DashboardServer) => Promise<void>,
): Promise<void> {
  const app = testApp();
  const d = await startDashboard({ app, port: 0, auth });
  try {
    await fn(d);
  } finally {
    await d.close();
  }
}

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

describe('dashboard access', () => {
  it('listens on 127.0.0.1 by default and refuses another address without auth', async () => {
    const app = testApp();
    await expect(startDashboard({ app, port: 0, host: '0.0.0.0' })).rejects.toThrow(/--auth/);
    await withDashboard(null, async (d) => {
      expect(d.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const page = await fetch(d.url);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<title>Celeriac dashboard</title>');
    });
  });

  it('basic auth guards every route; actions also need the X-Celeriac-Action header (CSRF)', async () => {
    await withDashboard(parseAuth('ada:s3:cret'), async (d) => {
      expect((await fetch(d.url)).status).toBe(401);
      expect(
        (await fetch(`${d.url}api/state`, { headers: { authorization: basic('ada', 'wrong') } })).status,
      ).toBe(401);
      const ok = await fetch(`${d.url}api/state`, { headers: { authorization: basic('ada', 's3:cret') } });
      expect(ok.status).toBe(200);
      const state = (await ok.json()) as { workers: unknown[]; queues: Array<{ name: string }> };
      expect(state.queues.map((q) => q.name)).toContain('celery');
      const purge = (headers: Record<string, string>) =>
        fetch(`${d.url}api/queues/celery/purge`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ confirm: 'celery' }),
        });
      expect((await purge({ authorization: basic('ada', 's3:cret') })).status).toBe(403);
      expect((await purge({ 'x-celeriac-action': '1' })).status).toBe(401);
      const done = await purge({ authorization: basic('ada', 's3:cret'), 'x-celeriac-action': '1' });
      expect(await done.json()).toMatchObject({ count: 0 });
    });
  });

  it('a token works as a Bearer header, and as ?token= once (then a cookie)', async () => {
    await withDashboard({ token: 'tok-42' }, async (d) => {
      expect((await fetch(`${d.url}api/state`)).status).toBe(401);
      expect((await fetch(`${d.url}api/state`, { headers: { authorization: 'Bearer tok-42' } })).status).toBe(
        200,
      );
      const first = await fetch(`${d.url}?token=tok-42`);
      expect(first.status).toBe(200);
      const cookie = first.headers.get('set-cookie') ?? '';
      expect(cookie).toMatch(/HttpOnly/i);
      expect(cookie).toMatch(/SameSite=Strict/i);
      const again = await fetch(`${d.url}api/state`, { headers: { cookie: cookie.split(';')[0] as string } });
      expect(again.status).toBe(200);
    });
  });

  it('purge needs the queue name as confirmation', async () => {
    await withDashboard(null, async (d) => {
      const res = await fetch(`${d.url}api/queues/celery/purge`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-celeriac-action': '1' },
        body: JSON.stringify({ confirm: 'other' }),
      });
      expect(res.status).toBe(400);
    });
  });
});

describe('dashboard start-up', () => {
  it('a port already taken fails start-up cleanly', async () => {
    const app = testApp();
    const first = await startDashboard({ app, port: 0 });
    try {
      await expect(startDashboard({ app, port: first.port })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await first.close();
    }
  });
});
