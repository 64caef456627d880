import type { Duration } from './duration.js';
import { toMs } from './duration.js';
import { ConfigError } from './errors.js';
import type { Logger } from './logging.js';

/**
 * What `new Celeriac(config)` accepts. Every field is optional: `new Celeriac({})` runs on the
 * embedded memory broker with no result sink.
 */
export interface CeleriacConfig {
  /** Broker URL: `memory://` (default), `redis://…`. */
  broker?: string;
  /** Result sink URL: `memory://`, `redis://…`. Unset: no results are stored and `get()` fails. */
  results?: string;
  /** Queue for tasks that name none (Celery's `task_default_queue`). Default `celery`. */
  defaultQueue?: string;
  /** Routes by task name: exact names or glob patterns (`emails.*`) to a queue. First match wins. */
  routes?: Record<string, { queue: string; broker?: string }>;
  /**
   * More brokers by name, beside `broker` (named `default`): the CEP's Router sends some tasks to
   * one broker and others to another. Routes and the task option `broker` name them.
   *
   * @example
   * { broker: 'redis://localhost', brokers: { rabbit: 'amqp://guest:guest@localhost//' }, routes: { 'billing.*': { queue: 'billing', broker: 'rabbit' } } }
   */
  brokers?: Record<string, string>;
  /** How long results are kept (Celery's `result_expires`). Default one day. */
  resultExpires?: Duration;
  /** Store STARTED when a task starts (Celery's `task_track_started`). Default false. */
  trackStarted?: boolean;
  /** Deliveries after which a message is dead-lettered as poison. Default 5. */
  maxDeliveries?: number;
  /** Store name, args, kwargs, worker, retries and queue in result meta (Celery's `result_extended`). Default false. */
  resultExtended?: boolean;
  /** A pino logger (or anything with its methods), or a level name. Default: pino at `info`, or CELERIAC_LOG_LEVEL. */
  logger?: Logger | string;
  /** Adapter-specific broker options (e.g. `visibilityTimeout` on Redis). */
  brokerOptions?: Record<string, unknown>;
  /** Adapter-specific result sink options. */
  resultOptions?: Record<string, unknown>;
}

/** The config after validation, with defaults applied and durations in milliseconds. */
export interface ResolvedConfig {
  broker: string;
  results: string | undefined;
  defaultQueue: string;
  routes: Array<{ pattern: RegExp; source: string; queue: string; broker: string | undefined }>;
  /** Every broker by name; `default` is `broker`. */
  brokers: Record<string, string>;
  resultExpiresMs: number;
  trackStarted: boolean;
  maxDeliveries: number;
  resultExtended: boolean;
  brokerOptions: Record<string, unknown>;
  resultOptions: Record<string, unknown>;
}

/**
 * What each field accepts. Hand-written rather than a schema library: config is validated once, and
 * keeping zod off the import path keeps an idle worker's memory low (zod alone costs ~14 MB RSS).
 */
type Check = (value: unknown) => string | null;
const optional =
  (check: Check): Check =>
  (v) =>
    v === undefined ? null : check(v);
const nonEmptyString: Check = (v) =>
  typeof v === 'string' && v.length > 0 ? null : `expected a non-empty string, got ${describe(v)}`;
const boolean: Check = (v) => (typeof v === 'boolean' ? null : `expected true or false, got ${describe(v)}`);
const positiveInt: Check = (v) =>
  Number.isInteger(v) && (v as number) > 0 ? null : `expected an integer > 0, got ${describe(v)}`;
const duration: Check = (v) =>
  (typeof v === 'number' && v >= 0) || typeof v === 'string'
    ? null
    : `expected milliseconds or a duration string, got ${describe(v)}`;
const record: Check = (v) => (isPlainObject(v) ? null : `expected an object, got ${describe(v)}`);
const routes: Check = (v) => {
  if (!isPlainObject(v)) return `expected an object of { queue } by task name pattern, got ${describe(v)}`;
  for (const [pattern, route] of Object.entries(v)) {
    if (
      !isPlainObject(route) ||
      nonEmptyString(route.queue) !== null ||
      (route.broker !== undefined && nonEmptyString(route.broker) !== null) ||
      Object.keys(route).some((k) => k !== 'queue' && k !== 'broker')
    ) {
      return `route '${pattern}': expected { queue: string, broker?: string }`;
    }
  }
  return null;
};
const FIELDS: Record<keyof CeleriacConfig, Check> = {
  broker: optional(nonEmptyString),
  results: optional(nonEmptyString),
  defaultQueue: optional(nonEmptyString),
  routes: optional(routes),
  brokers: optional((v) => {
    if (!isPlainObject(v)) return `expected an object of broker URLs by name, got ${describe(v)}`;
    for (const [name, url] of Object.entries(v)) {
      if (name === 'default') return "'default' is the name of `broker`: choose another name";
      if (nonEmptyString(url) !== null) return `broker '${name}': expected a URL string`;
    }
    return null;
  }),
  resultExpires: optional(duration),
  trackStarted: optional(boolean),
  maxDeliveries: optional(positiveInt),
  resultExtended: optional(boolean),
  logger: () => null,
  brokerOptions: optional(record),
  resultOptions: optional(record),
};

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'string' ? `'${v}'` : typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`;
}

/**
 * Validates a config once, at the edge. Errors name the bad field and what was expected.
 *
 * @example
 * resolveConfig({ maxDeliveries: 0 }) // ConfigError: invalid config: maxDeliveries: expected a number > 0
 */
export function resolveConfig(
  config: CeleriacConfig,
  env: { brokerUrl?: string; resultsUrl?: string } = {},
): ResolvedConfig {
  if (config === null || typeof config !== 'object') throw new ConfigError('config', 'expected an object');
  for (const key of Object.keys(config)) {
    if (!(key in FIELDS))
      throw new ConfigError(key, `unknown option (expected one of ${Object.keys(FIELDS).join(', ')})`);
  }
  for (const [key, check] of Object.entries(FIELDS)) {
    const problem = check((config as Record<string, unknown>)[key]);
    if (problem) throw new ConfigError(key, problem);
  }
  const c = config;
  const broker = c.broker ?? env.brokerUrl ?? 'memory://';
  const brokers: Record<string, string> = { default: broker, ...c.brokers };
  for (const [pattern, route] of Object.entries(c.routes ?? {})) {
    if (route.broker !== undefined && !(route.broker in brokers)) {
      throw new ConfigError(
        'routes',
        `route '${pattern}' names broker '${route.broker}', which is not in brokers (${Object.keys(brokers).join(', ')})`,
      );
    }
  }
  return {
    broker,
    brokers,
    results: c.results ?? env.resultsUrl,
    defaultQueue: c.defaultQueue ?? 'celery',
    routes: Object.entries(c.routes ?? {}).map(([source, route]) => ({
      source,
      pattern: globToRegExp(source),
      queue: route.queue,
      broker: route.broker,
    })),
    resultExpiresMs: toMs(c.resultExpires ?? 86_400_000, 'resultExpires'),
    trackStarted: c.trackStarted ?? false,
    maxDeliveries: c.maxDeliveries ?? 5,
    resultExtended: c.resultExtended ?? false,
    brokerOptions: c.brokerOptions ?? {},
    resultOptions: c.resultOptions ?? {},
  };
}

/** `emails.*` → /^emails\..*$/ ; `*` matches any run of characters. */
export function globToRegExp(glob: string): RegExp {
  const escaped = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`);
}
