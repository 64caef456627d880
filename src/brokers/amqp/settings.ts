import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { ConnectionOptions } from 'node:tls';
import { type Duration, toMs } from '../../duration.js';
import { ConfigError } from '../../errors.js';

/** Arguments a Celeriac-only queue may opt into (see `queueArguments`). */
export interface QueueOptions {
  /** `x-max-priority` (1–255; 9 gives the API's 0–9 its full meaning). Classic queues only. */
  maxPriority?: number;
  /** Broker-side dead-lettering of rejected/expired messages to `<queue>.dead` (x-dead-letter-*). */
  deadLetter?: boolean;
  /** A quorum queue (`x-queue-type: quorum`): no priorities, no global QoS (RabbitMQ 3.10). */
  quorum?: boolean;
  /** `x-delivery-limit` of a quorum queue (RabbitMQ drops/dead-letters beyond it). */
  deliveryLimit?: number;
}

/**
 * Settings of the AMQP transport, from `brokerOptions` (durations in ms or strings) or the URL query.
 *
 * | option | URL query | default | what |
 * |---|---|---|---|
 * | `heartbeat` | `heartbeat` (s) | 60 s | AMQP heartbeat; the connection is dropped and re-opened after about two missed ones |
 * | `connectionName` | `connection_name` | `celeriac:<host>:<pid>:<n>` | shown by `rabbitmqctl list_connections client_properties` |
 * | `hosts` | `hosts` (`h1:5672,h2:5672`) | — | other cluster nodes, tried in turn on (re)connect |
 * | `maxBacklog` | `max_backlog` | 10000 | most messages held while RabbitMQ is unreachable; beyond it `publish()` rejects |
 * | `publishTimeout` | `publish_timeout` | 30 s | how long a publish waits for a connection and its confirm before it rejects |
 * | `unhealthyAfter` | — | 30 s | a connection down this long makes `health()` unhealthy (degraded before) |
 * | `queues` | — | {} | per-queue opt-in arguments: `{ 'orders': { maxPriority: 9 }, 'jobs.*': { quorum: true } }` (a trailing `*` matches a prefix). Celery-named queues should stay without, as Celery declares them. |
 * | `reconnectDelay` | — | 100 ms … 5 s | low/high bounds of the exponential reconnect backoff |
 * | `tls` | `ssl_ca_certs`, `ssl_certfile`, `ssl_keyfile` (PEM file paths), `ssl_cert_reqs` (`none` skips verification) | system CAs, verified | `amqps://` only: Node `tls.connect` options (`ca`, `cert`, `key` as PEM contents, `passphrase`, `rejectUnauthorized`, `servername`, …), over those of the query. The query uses Celery's names, as `rediss://`. |
 * | `replyQueue` | — | true | declare this process's rpc reply queue (`threadOid()`) when it publishes a task that names it as `reply_to`, as Celery's client does, so rpc:// results sent before the app reads them are kept; `false` for apps without rpc:// results |
 */
export interface AmqpSettings {
  hostname: string;
  port: number;
  username: string;
  password: string;
  vhost: string;
  tls: boolean;
  /** Options for `tls.connect` (amqps:// only; empty otherwise). */
  tlsOptions: ConnectionOptions;
  hosts: string[];
  heartbeatS: number;
  connectionName: string;
  maxBacklog: number;
  publishTimeoutMs: number;
  unhealthyAfterMs: number;
  retryLowMs: number;
  retryHighMs: number;
  queues: Array<{ pattern: string; options: QueueOptions }>;
  replyQueue: boolean;
}

let connectionCounter = 0;

/**
 * Parses `amqp://user:pass@host:port/vhost?…` as kombu does: the path after the first `/` is the
 * URL-decoded vhost, and an empty path (or `//`) means the default vhost `/`.
 *
 * @example
 * resolveAmqpSettings(new URL('amqp://guest:guest@127.0.0.1:5672//'), {}).vhost // '/'
 */
export function resolveAmqpSettings(url: URL, options: Record<string, unknown> = {}): AmqpSettings {
  const q = url.searchParams;
  const tls = url.protocol === 'amqps:';
  const rawPath = url.pathname.replace(/^\//, '');
  const vhost = rawPath === '' ? '/' : decodeURIComponent(rawPath);
  const duration = (key: string, queryKey: string, fallback: number, unitS = false): number => {
    const v = options[key] ?? (queryKey ? q.get(queryKey) : null) ?? undefined;
    if (v === undefined) return fallback;
    if (typeof v === 'string' && /^\d+(\.\d+)?$/.test(v)) return unitS ? Number(v) * 1000 : Number(v);
    if (typeof v !== 'number' && typeof v !== 'string')
      throw new ConfigError(
        `brokerOptions.${key}`,
        `expected a duration (ms or '10s'), got ${JSON.stringify(v)}`,
      );
    return toMs(v as Duration, `brokerOptions.${key}`);
  };
  const integer = (key: string, queryKey: string, fallback: number): number => {
    const v = options[key] ?? q.get(queryKey) ?? undefined;
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1)
      throw new ConfigError(`brokerOptions.${key}`, `expected a positive integer, got ${JSON.stringify(v)}`);
    return n;
  };
  const hostsOption = options.hosts ?? q.get('hosts')?.split(',') ?? [];
  if (!Array.isArray(hostsOption) || hostsOption.some((h) => typeof h !== 'string'))
    throw new ConfigError(
      'brokerOptions.hosts',
      `expected a list of 'host:port', got ${JSON.stringify(hostsOption)}`,
    );
  const name = options.connectionName ?? q.get('connection_name');
  if (name !== null && name !== undefined && typeof name !== 'string')
    throw new ConfigError('brokerOptions.connectionName', `expected a string, got ${JSON.stringify(name)}`);
  connectionCounter += 1;
  const heartbeatMs = duration('heartbeat', 'heartbeat', 60_000, true);
  return {
    hostname: url.hostname || '127.0.0.1',
    port: url.port ? Number(url.port) : tls ? 5671 : 5672,
    username: url.username ? decodeURIComponent(url.username) : 'guest',
    password: url.password ? decodeURIComponent(url.password) : 'guest',
    vhost,
    tls,
    tlsOptions: tlsOptions(q, options.tls, tls),
    hosts: (hostsOption as string[]).filter((h) => h.length > 0),
    heartbeatS: Math.max(0, Math.round(heartbeatMs / 1000)),
    connectionName: name ?? `celeriac:${hostname()}:${process.pid}:${connectionCounter}`,
    maxBacklog: integer('maxBacklog', 'max_backlog', 10_000),
    publishTimeoutMs: duration('publishTimeout', 'publish_timeout', 30_000),
    unhealthyAfterMs: duration('unhealthyAfter', '', 30_000),
    retryLowMs: 100,
    retryHighMs: duration('reconnectDelay', '', 5_000),
    queues: parseQueueOptions(options.queues),
    replyQueue: options.replyQueue !== false,
  };
}

const TLS_QUERY = ['ssl_ca_certs', 'ssl_certfile', 'ssl_keyfile', 'ssl_cert_reqs'] as const;
const TLS_OPTIONS = new Set([
  'ca',
  'cert',
  'key',
  'pfx',
  'passphrase',
  'rejectUnauthorized',
  'servername',
  'checkServerIdentity',
  'minVersion',
  'maxVersion',
  'ciphers',
]);

/**
 * TLS options of an amqps:// URL: Celery's query names (PEM file paths, read here), then
 * `brokerOptions.tls` (Node's `tls.connect` options) over them. No `servername` unless given: with
 * `hosts`, each host is verified under its own name.
 */
function tlsOptions(q: URLSearchParams, option: unknown, tls: boolean): ConnectionOptions {
  const inQuery = TLS_QUERY.filter((name) => q.has(name));
  if (!tls) {
    if (inQuery.length)
      throw new ConfigError(`broker URL ?${inQuery[0]}`, 'TLS options need an amqps:// URL');
    if (option !== undefined) throw new ConfigError('brokerOptions.tls', 'TLS options need an amqps:// URL');
    return {};
  }
  const out: ConnectionOptions = {};
  const read = (name: (typeof TLS_QUERY)[number]): Buffer | undefined => {
    const path = q.get(name);
    if (!path) return undefined;
    try {
      return readFileSync(path);
    } catch (cause) {
      throw new ConfigError(`broker URL ?${name}`, `cannot read '${path}'`, { cause });
    }
  };
  const ca = read('ssl_ca_certs');
  const cert = read('ssl_certfile');
  const key = read('ssl_keyfile');
  if (ca) out.ca = ca;
  if (cert) out.cert = cert;
  if (key) out.key = key;
  const reqs = q.get('ssl_cert_reqs')?.toLowerCase();
  if (reqs !== undefined) {
    if (!['none', 'cert_none', 'optional', 'cert_optional', 'required', 'cert_required'].includes(reqs))
      throw new ConfigError(
        'broker URL ?ssl_cert_reqs',
        `expected none, optional or required, got '${reqs}'`,
      );
    out.rejectUnauthorized = !reqs.endsWith('none');
  }
  if (option === undefined) return out;
  if (typeof option !== 'object' || option === null || Array.isArray(option))
    throw new ConfigError(
      'brokerOptions.tls',
      `expected Node tls.connect options ({ ca, cert, key, rejectUnauthorized, … }), got ${JSON.stringify(option)}`,
    );
  for (const k of Object.keys(option))
    if (!TLS_OPTIONS.has(k))
      throw new ConfigError(
        `brokerOptions.tls.${k}`,
        `unknown option (known: ${[...TLS_OPTIONS].join(', ')})`,
      );
  return { ...out, ...(option as ConnectionOptions) };
}

function parseQueueOptions(value: unknown): AmqpSettings['queues'] {
  if (value === undefined) return [];
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ConfigError(
      'brokerOptions.queues',
      `expected { [queue or 'prefix*']: options }, got ${JSON.stringify(value)}`,
    );
  return Object.entries(value as Record<string, unknown>).map(([pattern, raw]) => {
    const field = `brokerOptions.queues['${pattern}']`;
    if (typeof raw !== 'object' || raw === null)
      throw new ConfigError(
        field,
        `expected { maxPriority?, deadLetter?, quorum?, deliveryLimit? }, got ${JSON.stringify(raw)}`,
      );
    const o = raw as Record<string, unknown>;
    const known = new Set(['maxPriority', 'deadLetter', 'quorum', 'deliveryLimit']);
    for (const k of Object.keys(o))
      if (!known.has(k)) throw new ConfigError(`${field}.${k}`, 'unknown option');
    const options: QueueOptions = {};
    if (o.maxPriority !== undefined) {
      if (
        !Number.isInteger(o.maxPriority) ||
        (o.maxPriority as number) < 1 ||
        (o.maxPriority as number) > 255
      )
        throw new ConfigError(
          `${field}.maxPriority`,
          `expected an integer 1–255, got ${JSON.stringify(o.maxPriority)}`,
        );
      options.maxPriority = o.maxPriority as number;
    }
    if (o.deliveryLimit !== undefined) {
      if (!Number.isInteger(o.deliveryLimit) || (o.deliveryLimit as number) < 1)
        throw new ConfigError(
          `${field}.deliveryLimit`,
          `expected a positive integer, got ${JSON.stringify(o.deliveryLimit)}`,
        );
      options.deliveryLimit = o.deliveryLimit as number;
    }
    if (o.deadLetter !== undefined) options.deadLetter = o.deadLetter === true;
    if (o.quorum !== undefined) options.quorum = o.quorum === true;
    if (options.quorum && options.maxPriority !== undefined)
      throw new ConfigError(
        field,
        'quorum queues have no priorities in RabbitMQ 3.10: drop maxPriority or quorum',
      );
    if (options.deliveryLimit !== undefined && !options.quorum)
      throw new ConfigError(
        `${field}.deliveryLimit`,
        'x-delivery-limit is a quorum queue argument (RabbitMQ refuses it on a classic queue): add quorum: true or drop deliveryLimit',
      );
    return { pattern, options };
  });
}

/** The opt-in options of a queue: the exact name wins over the longest matching `prefix*`. */
export function queueOptionsFor(settings: AmqpSettings, queue: string): QueueOptions {
  let best: { len: number; options: QueueOptions } | undefined;
  for (const { pattern, options } of settings.queues) {
    if (pattern === queue) return options;
    if (pattern.endsWith('*') && queue.startsWith(pattern.slice(0, -1))) {
      const len = pattern.length - 1;
      if (!best || len > best.len) best = { len, options };
    }
  }
  return best?.options ?? {};
}
