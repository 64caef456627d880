import { z } from 'zod';
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
  routes?: Record<string, { queue: string }>;
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
  routes: Array<{ pattern: RegExp; source: string; queue: string }>;
  resultExpiresMs: number;
  trackStarted: boolean;
  maxDeliveries: number;
  resultExtended: boolean;
  brokerOptions: Record<string, unknown>;
  resultOptions: Record<string, unknown>;
}

const durationSchema = z.union([z.number().nonnegative(), z.string()]);
const schema = z.strictObject({
  broker: z.string().min(1).optional(),
  results: z.string().min(1).optional(),
  defaultQueue: z.string().min(1).optional(),
  routes: z.record(z.string(), z.strictObject({ queue: z.string().min(1) })).optional(),
  resultExpires: durationSchema.optional(),
  trackStarted: z.boolean().optional(),
  maxDeliveries: z.number().int().positive().optional(),
  resultExtended: z.boolean().optional(),
  logger: z.unknown().optional(),
  brokerOptions: z.record(z.string(), z.unknown()).optional(),
  resultOptions: z.record(z.string(), z.unknown()).optional(),
});

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
  const parsed = schema.safeParse(config);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field =
      issue?.path.join('.') || (issue?.code === 'unrecognized_keys' ? issue.keys.join(', ') : 'config');
    const message =
      issue?.code === 'unrecognized_keys'
        ? `unknown option (expected one of ${Object.keys(schema.shape).join(', ')})`
        : (issue?.message ?? 'invalid');
    throw new ConfigError(field, message);
  }
  const c = parsed.data;
  return {
    broker: c.broker ?? env.brokerUrl ?? 'memory://',
    results: c.results ?? env.resultsUrl,
    defaultQueue: c.defaultQueue ?? 'celery',
    routes: Object.entries(c.routes ?? {}).map(([source, route]) => ({
      source,
      pattern: globToRegExp(source),
      queue: route.queue,
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
