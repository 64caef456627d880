import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { ConfigError } from '../../errors.js';

/**
 * The Redis URL forms Celeriac accepts (broker and result sink alike):
 *
 * | form | meaning |
 * |---|---|
 * | `redis://[[user]:password@]host[:port][/db]` | one server (port 6379, db 0 by default) |
 * | `rediss://…` | the same over TLS; `?ssl_cert_reqs=none` skips verification, `ssl_ca_certs=`, `ssl_certfile=`, `ssl_keyfile=` name PEM files (Celery's names) |
 * | `redis+sentinel://[:password@]host:port/<master>[/db]?sentinel=host2:port&sentinel=…` | Sentinel: the first sentinel in the authority, more as `sentinel=` parameters; `sentinel_password=` if the sentinels need one; `tls=1` for TLS to the master |
 * | `redis+cluster://[:password@]host:port[/]?node=host2:port&node=…` | Redis Cluster: seed nodes (Celeriac-only layout, see `keys.ts`) |
 *
 * A comma-separated host list (`h1:1,h2:2`) is not a valid WHATWG URL, hence the repeated query
 * parameters. Every form accepts `?global_keyprefix=<p>` with kombu's meaning: `<p>` prefixes every
 * key and pub/sub channel the adapter uses, the `unacked` bookkeeping included.
 *
 * @example
 * parseRedisUrl(new URL('redis://:s3cret@10.0.0.5:6380/2?global_keyprefix=app1:'))
 * // { mode: 'single', host: '10.0.0.5', port: 6380, db: 2, password: 's3cret', keyPrefix: 'app1:', … }
 */
export interface RedisEndpoint {
  mode: 'single' | 'sentinel' | 'cluster';
  /** `single`: the server; `sentinel`: the first sentinel; `cluster`: the first seed node. */
  host: string;
  port: number;
  /** More sentinels / seed nodes. */
  others: Array<{ host: string; port: number }>;
  db: number;
  username?: string;
  password?: string;
  /** Sentinel: the master's name. */
  masterName?: string;
  sentinelPassword?: string;
  tls?: ConnectionOptions;
  /** kombu's `global_keyprefix`: prepended to every key and channel. */
  keyPrefix: string;
  /** Other query parameters, for adapter-specific settings (`visibility_timeout`…). */
  params: URLSearchParams;
}

export function parseRedisUrl(url: URL, field = 'broker'): RedisEndpoint {
  const scheme = url.protocol.replace(/:$/, '');
  const params = url.searchParams;
  const host = url.hostname || '127.0.0.1';
  const username = url.username ? decodeURIComponent(url.username) : undefined;
  const password = url.password ? decodeURIComponent(url.password) : undefined;
  const keyPrefix = params.get('global_keyprefix') ?? '';
  const base = { username, password, keyPrefix, params };

  if (scheme === 'redis' || scheme === 'rediss') {
    const db = parseDb(url.pathname.replace(/^\//, ''), field);
    const tls = scheme === 'rediss' ? tlsOptions(params, field, host) : undefined;
    return { mode: 'single', host, port: parsePort(url.port, 6379, field), others: [], db, tls, ...base };
  }
  if (scheme === 'redis+sentinel') {
    const [masterName, dbText] = url.pathname.replace(/^\//, '').split('/');
    if (!masterName) {
      throw new ConfigError(
        field,
        "redis+sentinel:// needs the master's name as the path: redis+sentinel://host:26379/mymaster/0",
      );
    }
    return {
      mode: 'sentinel',
      host,
      port: parsePort(url.port, 26379, field),
      others: params.getAll('sentinel').map((s) => hostPort(s, 26379, field)),
      db: parseDb(dbText ?? '', field),
      masterName: decodeURIComponent(masterName),
      sentinelPassword: params.get('sentinel_password') ?? undefined,
      tls:
        params.get('tls') === '1' || params.get('tls') === 'true'
          ? tlsOptions(params, field, host)
          : undefined,
      ...base,
    };
  }
  if (scheme === 'redis+cluster') {
    if (url.pathname.replace(/^\//, '') !== '') {
      throw new ConfigError(
        field,
        'redis+cluster:// has no database (Redis Cluster only has db 0); remove the path',
      );
    }
    if (keyPrefix.includes('{') || keyPrefix.includes('}')) {
      throw new ConfigError(
        field,
        `global_keyprefix must not contain '{' or '}' on Redis Cluster (it would change the hash slot), got '${keyPrefix}'`,
      );
    }
    return {
      mode: 'cluster',
      host,
      port: parsePort(url.port, 6379, field),
      others: params.getAll('node').map((s) => hostPort(s, 6379, field)),
      db: 0,
      tls:
        params.get('tls') === '1' || params.get('tls') === 'true'
          ? tlsOptions(params, field, host)
          : undefined,
      ...base,
    };
  }
  throw new ConfigError(field, `not a Redis URL scheme: '${scheme}://'`);
}

function parseDb(text: string, field: string): number {
  if (text === '') return 0;
  const db = Number(text);
  if (!Number.isInteger(db) || db < 0)
    throw new ConfigError(field, `expected a database number as the URL path, got '/${text}'`);
  return db;
}

function parsePort(text: string, fallback: number, field: string): number {
  if (text === '') return fallback;
  const port = Number(text);
  if (!Number.isInteger(port) || port <= 0 || port > 65535)
    throw new ConfigError(field, `expected a port number, got '${text}'`);
  return port;
}

function hostPort(text: string, fallback: number, field: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(text.trim());
  if (!m?.[1]) throw new ConfigError(field, `expected host:port, got '${text}'`);
  return { host: m[1], port: parsePort(m[2] ?? '', fallback, field) };
}

/** TLS options from Celery's query names: ssl_cert_reqs, ssl_ca_certs, ssl_certfile, ssl_keyfile. */
function tlsOptions(params: URLSearchParams, field: string, servername: string): ConnectionOptions {
  const read = (name: string): Buffer | undefined => {
    const path = params.get(name);
    if (!path) return undefined;
    try {
      return readFileSync(path);
    } catch (cause) {
      throw new ConfigError(field, `${name}: cannot read '${path}'`, { cause });
    }
  };
  const reqs = (params.get('ssl_cert_reqs') ?? 'required').toLowerCase();
  if (!['none', 'cert_none', 'optional', 'cert_optional', 'required', 'cert_required'].includes(reqs)) {
    throw new ConfigError(field, `ssl_cert_reqs: expected none, optional or required, got '${reqs}'`);
  }
  const options: ConnectionOptions = { rejectUnauthorized: !reqs.endsWith('none'), servername };
  const ca = read('ssl_ca_certs');
  const cert = read('ssl_certfile');
  const key = read('ssl_keyfile');
  if (ca) options.ca = ca;
  if (cert) options.cert = cert;
  if (key) options.key = key;
  return options;
}
