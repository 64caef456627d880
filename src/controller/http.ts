import type { AddressInfo } from 'node:net';
import type { ServerType } from '@hono/node-server';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import type { HealthReport } from '../health.js';

/** What the health server asks. */
export interface HealthSource {
  /** `/livez`: the process is alive and its event loop responsive. */
  liveness(): HealthReport | Promise<HealthReport>;
  /** `/readyz`: connected to the broker and consuming. */
  readiness(): Promise<HealthReport>;
}

/**
 * The routes: `/livez` and `/readyz` answer 200 when the report is healthy or degraded and 503
 * when it is unhealthy, with the report as JSON (`status`, `reason`, `components`) either way, so
 * `curl` shows why. `/healthz` is `/readyz` under the name some tools expect.
 */
export function healthRoutes(source: HealthSource): Hono {
  const app = new Hono();
  const answer = (report: HealthReport) =>
    new Response(`${JSON.stringify(report)}\n`, {
      status: report.status === 'unhealthy' ? 503 : 200,
      headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
    });
  const failed = (err: unknown) =>
    answer({
      status: 'unhealthy',
      reason: `health check failed: ${err instanceof Error ? err.message : String(err)}`,
    });
  app.get('/livez', async () => answer(await source.liveness()));
  for (const path of ['/readyz', '/healthz'])
    app.get(path, async () => {
      try {
        return answer(await source.readiness());
      } catch (err) {
        return failed(err);
      }
    });
  return app;
}

/**
 * The health endpoint on `port` (0 picks a free one; `port` of the result says which).
 *
 * @example
 * const server = await startHealthServer(controller, { port: 8080 });
 * // curl localhost:8080/readyz
 * await server.close();
 */
export async function startHealthServer(
  source: HealthSource,
  options: { port: number; host?: string },
): Promise<{ port: number; close(): Promise<void> }> {
  const routes = healthRoutes(source);
  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: routes.fetch, port: options.port, hostname: options.host ?? '0.0.0.0' }, () =>
      resolve(s),
    );
    s.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        if ('closeAllConnections' in server) server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
