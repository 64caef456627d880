import type { SendRequest } from './core.js';
import type { Duration } from './duration.js';
import { toEpochMs, toMs } from './duration.js';
import { ConfigError } from './errors.js';
import type { Signature } from './signature.js';
import type { ApplyOptions, TaskOptions } from './task.js';

/** Turns call options into what the publisher needs, validating each field by name. */
export function toSendRequest(
  name: string,
  options: ApplyOptions<readonly unknown[]>,
  defaults: TaskOptions = {},
): SendRequest {
  const args = options.args ?? [];
  if (!Array.isArray(args))
    throw new ConfigError('args', `expected an array of positional args, got ${typeof args}`);
  const kwargs = options.kwargs ?? {};
  if (kwargs === null || typeof kwargs !== 'object' || Array.isArray(kwargs)) {
    throw new ConfigError('kwargs', 'expected a plain object of keyword args');
  }
  const now = Date.now();
  let eta: number | null = null;
  if (options.countdown !== undefined && options.eta !== undefined) {
    throw new ConfigError('countdown', 'give either countdown or eta, not both');
  }
  if (options.countdown !== undefined) eta = now + toMs(options.countdown, 'countdown');
  if (options.eta !== undefined) eta = toEpochMs(options.eta, 'eta');
  let expires: number | null = null;
  if (options.expires !== undefined) {
    expires =
      options.expires instanceof Date
        ? toEpochMs(options.expires, 'expires')
        : now + toMs(options.expires, 'expires');
  }
  const priority = options.priority ?? defaults.priority;
  if (priority !== undefined && !(Number.isInteger(priority) && priority >= 0 && priority <= 9)) {
    throw new ConfigError('priority', `expected an integer from 0 to 9 (9 = most urgent), got ${priority}`);
  }
  const limit = options.timeLimit ?? defaults.timeLimit;
  const seconds = (d: Duration | undefined, field: string) =>
    d === undefined ? null : toMs(d, field) / 1000;
  const list = (s: Signature | readonly Signature[] | undefined) =>
    s === undefined ? null : (Array.isArray(s) ? s : [s]).map((x) => (x as Signature).toJSON());
  return {
    name,
    args: [...args],
    kwargs: { ...kwargs },
    taskId: options.taskId,
    eta,
    expires,
    priority,
    queue: options.queue ?? defaults.queue,
    headers: options.headers,
    ignoreResult: options.ignoreResult ?? defaults.ignoreResult ?? false,
    shadow: options.shadow ?? null,
    timelimit: [seconds(limit?.hard, 'timeLimit.hard'), seconds(limit?.soft, 'timeLimit.soft')],
    embed: { callbacks: list(options.link), errbacks: list(options.linkError) },
  };
}
