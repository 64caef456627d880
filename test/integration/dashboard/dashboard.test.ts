/**
 * The dashboard in a real browser (playwright-core driving Debian's chromium) over real Redis
 * (db 10, FLUSHDB here): live updates without reload, revoke of a pending task, retry of a failed
 * one from its result meta, purge with confirmation, and a Python Celery worker (`-E`) with its
 * tasks on the same page. Screenshots go to test-artifacts/. Nothing skips: a missing chromium, Redis
 * or Python peer fails the test.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { BrowserContext, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DashboardServer } from '../../../src/dashboard/server.js';
import { startDashboard } from '../../../src/dashboard/server.js';
import { Celeriac } from '../../../src/index.js';
import type { MonitoringEvents } from '../../../src/observability/index.js';
import { sendTaskSentEvents } from '../../../src/observability/index.js';
import { repoRoot } from '../../fixtures.js';
import { assertPeerAvailable, PeerWorker, peerCall } from '../../helpers/peer.js';
import { runCli, startCli, until } from '../cli/helpers.js';
import { inspector, redisUrl } from '../redis/helpers.js';

const DB = 10;
const URL = redisUrl({ db: DB });
const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(repoRoot, 'test-artifacts');
const admin: Redis = inspector(DB);

let app: Celeriac;
let dashApp: Celeriac;
let dashboard: DashboardServer;
let sent: MonitoringEvents;
let context: BrowserContext;
let page: Page;
let profile: string;
let loads = 0;
let failuresLeft = 1;

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} not found: run scripts/test-setup.sh (apt-get install -y chromium)`);
  await admin.connect();
  await admin.flushdb();
  app = new Celeriac({ broker: URL, results: URL, logger: 'silent', resultExtended: true });
  app.task('dash.add', (a: number, b: number) => a + b, { queue: 'dash' });
  app.task(
    'dash.flaky',
    (n: number) => {
      if (failuresLeft-- > 0) throw new Error(`failed on ${n}`);
      return n * 2;
    },
    { queue: 'dash' },
  );
  app.task('dash.parked', (x: number) => x, { queue: 'parked' });
  app.task('dash.purged', (x: number) => x, { queue: 'purgeme' });
  sent = sendTaskSentEvents(app);
  await app.worker({ queues: ['dash'], events: true, name: 'ts-dash@test', concurrency: 4 }).start();
  dashApp = new Celeriac({ broker: URL, results: URL, logger: 'silent' });
  dashboard = await startDashboard({ app: dashApp, port: 0, sampleMs: 500 });
  profile = mkdtempSync(path.join(tmpdir(), 'celeriac-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('load', () => loads++);
  mkdirSync(ARTIFACTS, { recursive: true });
}, 60_000);

afterAll(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await dashboard?.close();
  await sent?.close();
  await app?.close();
  await dashApp?.close();
  admin.disconnect();
}, 30_000);

const stateOf = (id: string) => page.locator(`tr[data-task="${id}"] td.state`);

describe('dashboard in chromium', () => {
  it('shows tasks sent after the page loaded, turning SUCCESS without a reload', async () => {
    await page.goto(dashboard.url);
    await expect.poll(() => page.locator('#conn').textContent(), { timeout: 10_000 }).toBe('live');
    await expect
      .poll(() => page.locator('tr[data-worker="ts-dash@test"] td').nth(1).textContent(), { timeout: 10_000 })
      .toBe('online');
    const results = await Promise.all([1, 2, 3, 4, 5].map((i) => app.sendTask('dash.add', [i, i])));
    for (const r of results) {
      await expect.poll(() => stateOf(r.id).textContent(), { timeout: 15_000 }).toBe('SUCCESS');
    }
    expect(loads).toBe(1);
    // The detail view: args, result, timeline.
    await page.locator(`tr[data-task="${results[0]?.id}"]`).click();
    await expect.poll(() => page.locator('#d-fields').textContent()).toContain('(1, 1)');
    expect(await page.locator('#d-fields').textContent()).toContain('task-succeeded');
    // …and what the result store holds (resultExtended keeps the original args).
    await expect.poll(() => page.locator('#d-meta').textContent()).toContain('stored result (SUCCESS): 2');
    expect(await page.locator('#d-meta').textContent()).toContain('args [1,1]');
    // Filters: by state and name.
    await page.selectOption('#f-state', 'SUCCESS');
    await page.fill('#f-name', 'dash.add');
    await expect.poll(() => page.locator('#tasks tbody tr').count()).toBe(5);
    await page.selectOption('#f-state', 'FAILURE');
    await expect.poll(() => page.locator('#tasks tbody tr').count()).toBe(0);
    await page.selectOption('#f-state', '');
    await page.fill('#f-name', '');
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-live.png'), fullPage: true });
  }, 60_000);

  it('revokes a pending task: REVOKED once a worker picks it up', async () => {
    const r = await app.sendTask('dash.parked', [7]);
    await expect.poll(() => stateOf(r.id).textContent(), { timeout: 10_000 }).toBe('PENDING');
    await page.locator(`tr[data-task="${r.id}"]`).click();
    await page.locator('#btn-revoke').click();
    await expect
      .poll(() => page.locator('#action-msg').textContent(), { timeout: 10_000 })
      .toContain('revoked');
    const late = app.worker({ queues: ['parked'], events: true, name: 'ts-late@test' });
    await late.start();
    await expect.poll(() => stateOf(r.id).textContent(), { timeout: 15_000 }).toBe('REVOKED');
    await expect.poll(() => page.locator('#d-state').textContent()).toBe('REVOKED');
    expect((await (await app.resultSink())?.get(r.id))?.status).toBe('REVOKED');
    await late.stop();
  }, 60_000);

  it('retries a failed task with its original args (result meta)', async () => {
    const r = await app.sendTask('dash.flaky', [21]);
    await expect.poll(() => stateOf(r.id).textContent(), { timeout: 15_000 }).toBe('FAILURE');
    await page.locator(`tr[data-task="${r.id}"]`).click();
    await page.locator('#btn-retry').click();
    await expect
      .poll(() => page.locator('#action-msg').textContent(), { timeout: 10_000 })
      .toContain('sent dash.flaky again');
    await page.fill('#f-name', 'dash.flaky');
    await page.selectOption('#f-state', 'SUCCESS');
    await expect.poll(() => page.locator('#tasks tbody tr').count(), { timeout: 15_000 }).toBe(1);
    expect(await page.locator('#tasks tbody tr td').nth(3).textContent()).toBe('(21,)');
    await page.selectOption('#f-state', '');
    await page.fill('#f-name', '');
  }, 60_000);

  it('purges a queue after typing its name to confirm', async () => {
    for (let i = 0; i < 3; i++) await app.sendTask('dash.purged', [i]);
    const depth = page.locator('tr[data-queue="purgeme"] td.depth');
    await expect.poll(() => depth.textContent(), { timeout: 10_000 }).toBe('3');
    page.once('dialog', (d) => void d.accept('nope'));
    await page.locator('tr[data-queue="purgeme"] button.purge').click();
    await new Promise((r) => setTimeout(r, 1000));
    expect(await depth.textContent()).toBe('3');
    page.once('dialog', (d) => void d.accept('purgeme'));
    await page.locator('tr[data-queue="purgeme"] button.purge').click();
    await expect.poll(() => depth.textContent(), { timeout: 10_000 }).toBe('0');
  }, 60_000);

  it('shows a Python Celery worker (-E) and its tasks', async () => {
    await assertPeerAvailable();
    const urls = { broker: URL, backend: URL };
    const node = `py-dash-${process.pid}@test`;
    const peer = await PeerWorker.start(urls, { events: true, name: node, queues: 'py-dash' });
    try {
      const row = page.locator(`tr[data-worker="${node}"]`);
      await expect.poll(() => row.locator('td').nth(1).textContent(), { timeout: 15_000 }).toBe('online');
      expect(await row.locator('td').nth(2).textContent()).toContain('py-celery');
      // Concurrency comes from `inspect stats` (heartbeats do not carry it): the peer runs 2.
      await expect.poll(() => row.locator('td').nth(3).textContent(), { timeout: 15_000 }).toBe('2');
      const r = await peerCall(urls, 'tasks.add', [40, 2], { queue: 'py-dash' });
      expect(r.state).toBe('SUCCESS');
      await expect.poll(() => stateOf(r.id).textContent(), { timeout: 15_000 }).toBe('SUCCESS');
      await page.locator(`tr[data-task="${r.id}"]`).click();
      await expect.poll(() => page.locator('#d-fields').textContent()).toContain('42');
      expect(await page.locator(`tr[data-task="${r.id}"] td`).nth(5).textContent()).toBe(node);
      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-python-worker.png'), fullPage: true });
    } finally {
      await peer.stop();
    }
    await expect
      .poll(() => page.locator(`tr[data-worker="${node}"] td`).nth(1).textContent(), { timeout: 15_000 })
      .toBe('offline');
    expect(loads).toBe(1);
  }, 90_000);
});

describe('celeriac dashboard (CLI)', () => {
  it('serves the page on the port it prints, needs auth off loopback, and stops on SIGINT', async () => {
    const refused = await runCli(['dashboard', '--broker', URL, '--host', '0.0.0.0', '--port', '0']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--auth/);
    const cli = startCli(['dashboard', '--broker', URL, '--port', '0', '--auth', 'ops:pw']);
    try {
      await until(() => /on http:\/\/127\.0\.0\.1:\d+\//.test(cli.output().stdout), 'the dashboard URL');
      const url = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(cli.output().stdout)?.[1] as string;
      expect((await fetch(url)).status).toBe(401);
      const page = await fetch(url, {
        headers: { authorization: `Basic ${Buffer.from('ops:pw').toString('base64')}` },
      });
      expect(page.status).toBe(200);
      expect(cli.output().stdout).not.toContain('pw@');
      cli.kill('SIGINT');
      expect((await cli.result).code).toBe(0);
    } finally {
      if (cli.exitCode === null) cli.kill('SIGKILL');
    }
  }, 60_000);
});
