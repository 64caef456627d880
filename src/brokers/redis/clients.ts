import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { HealthReport } from '../../health.js';
import type { RedisEndpoint } from './url.js';

/** A connection to Redis: one server (directly or found through Sentinel) or a Cluster. */
export type RedisClient = Redis | Cluster;

export type ScriptDefinitions = Record<string, { lua: string }>;

/**
 * Creates a client for an endpoint, without connecting (`lazyConnect`; no I/O in constructors).
 *
 * Reconnection is ioredis's: every 100 ms, 200 ms… up to 2 s between attempts, forever. Commands
 * issued while disconnected wait for the reconnect (`maxRetriesPerRequest: null`, offline queue on);
 * the callers bound how much they issue (the publisher's backlog, one fetch per consumer, acks
 * bounded by prefetch).
 */
export function createClient(
  endpoint: RedisEndpoint,
  name: string,
  scripts: ScriptDefinitions = {},
): RedisClient {
  const common: RedisOptions = {
    lazyConnect: true,
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    connectionName: name,
    keepAlive: 10_000,
    retryStrategy: (times) => Math.min(times * 100, 2000),
    scripts: Object.fromEntries(Object.entries(scripts).map(([k, v]) => [k, { lua: v.lua }])),
    ...(endpoint.username ? { username: endpoint.username } : {}),
    ...(endpoint.password ? { password: endpoint.password } : {}),
    ...(endpoint.tls ? { tls: endpoint.tls } : {}),
  };
  if (endpoint.mode === 'cluster') {
    const { scripts: _ignored, ...redisOptions } = common;
    return new Cluster([{ host: endpoint.host, port: endpoint.port }, ...endpoint.others], {
      lazyConnect: true,
      enableOfflineQueue: true,
      scripts: common.scripts,
      clusterRetryStrategy: (times) => Math.min(times * 100, 2000),
      redisOptions: { ...redisOptions, lazyConnect: false },
    });
  }
  if (endpoint.mode === 'sentinel') {
    return new Redis({
      ...common,
      db: endpoint.db,
      sentinels: [{ host: endpoint.host, port: endpoint.port }, ...endpoint.others],
      name: endpoint.masterName as string,
      ...(endpoint.sentinelPassword ? { sentinelPassword: endpoint.sentinelPassword } : {}),
      sentinelRetryStrategy: (times) => Math.min(times * 100, 2000),
    });
  }
  return new Redis({ ...common, host: endpoint.host, port: endpoint.port, db: endpoint.db });
}

/** A Redis Cluster client (commands without a key go to any node). */
export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}

/**
 * Runs `issue`, which sends commands on `client`, with the client's socket corked: the commands of
 * one call leave in one write (one system call, one wake-up of Redis) instead of one each. Only
 * a single-server client that is ready has a socket of its own; otherwise `issue` runs as it is.
 */
export function corked<T>(client: RedisClient, issue: () => T): T {
  const stream = client instanceof Redis && client.status === 'ready' ? client.stream : undefined;
  if (!stream || typeof stream.cork !== 'function') return issue();
  stream.cork();
  try {
    return issue();
  } finally {
    stream.uncork();
  }
}

/**
 * Follows a client's connection state for `health()`: healthy while ready, degraded while
 * (re)connecting, with the last error as the reason.
 */
export class ConnectionWatch {
  private lastError: string | undefined;
  private downSince: number | undefined;
  private everReady = false;

  constructor(
    private readonly client: RedisClient,
    private readonly label: string,
    log?: (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void,
  ) {
    client.on('error', (err: Error) => {
      const first = this.lastError !== err.message;
      this.lastError = err.message;
      if (first) log?.('warn', `${label}: connection error`, { error: err.message });
    });
    client.on('ready', () => {
      if (this.downSince !== undefined)
        log?.('info', `${label}: reconnected`, { downMs: Date.now() - this.downSince });
      this.everReady = true;
      this.downSince = undefined;
      this.lastError = undefined;
    });
    const down = () => {
      if (this.downSince === undefined) this.downSince = Date.now();
    };
    client.on('close', down);
    client.on('reconnecting', down);
  }

  get ready(): boolean {
    return this.client.status === 'ready';
  }

  report(): HealthReport {
    const status = this.client.status;
    if (status === 'ready') return { status: 'healthy' };
    if (status === 'end') return { status: 'unhealthy', reason: `${this.label}: connection closed` };
    if (status === 'wait') return { status: 'healthy' };
    const since =
      this.downSince === undefined ? '' : ` for ${Math.round((Date.now() - this.downSince) / 1000)}s`;
    const why = this.lastError ? `: ${this.lastError}` : '';
    return {
      status: 'degraded',
      reason: `${this.label}: ${this.everReady ? 'reconnecting' : 'connecting'}${since}${why}`,
    };
  }
}

/**
 * Resolves once the client is ready; rejects on the first failed attempt (the client keeps
 * reconnecting in the background, so later commands still go through when Redis comes back).
 */
export async function ensureConnected(client: RedisClient): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const done = (): void => {
      client.off('ready', onReady);
      client.off('error', onError);
      client.off('end', onEnd);
    };
    const onReady = (): void => {
      done();
      resolve();
    };
    const onError = (err: Error): void => {
      done();
      reject(err);
    };
    const onEnd = (): void => {
      done();
      reject(new Error('connection ended'));
    };
    client.on('ready', onReady);
    client.on('error', onError);
    client.on('end', onEnd);
    if (client.status === 'wait') client.connect().catch(() => {});
  });
}
