import { afterEach } from 'vitest';
import type { CeleriacConfig } from '../../src/index.js';
import { Celeriac } from '../../src/index.js';

const open: Celeriac[] = [];

/** A Celeriac app on its own in-process memory broker and sink, closed after each test. */
export function testApp(config: CeleriacConfig = {}): Celeriac {
  const name = `t${Math.random().toString(36).slice(2)}`;
  const app = new Celeriac({
    broker: `memory://${name}`,
    results: `memory://${name}`,
    logger: 'silent',
    ...config,
  });
  open.push(app);
  return app;
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((app) => app.close()));
});

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Waits until `check()` is true (checked on each macrotask), failing after `timeoutMs`. Resolves
 * with how long it waited (ms), for tests that report it.
 */
export async function until(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  what = 'condition',
): Promise<number> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
  return Date.now() - start;
}
