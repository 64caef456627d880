import type { Delivery } from '../brokers/transport.js';
import { MalformedMessageError } from '../errors.js';
import { decodeTask, parseCeleryDate } from '../messages/codec.js';
import type { TaskMessage } from '../messages/types.js';
import { EVENT_HEADER } from '../messages/types.js';
import type { Task } from '../task.js';

/** A delivery that is ready to run (or to be parked / revoked). */
export interface Job {
  delivery: Delivery;
  message: TaskMessage;
  task: Task<never[], unknown>;
  id: string;
  name: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  event: string | null;
  /** Epoch ms, or null. */
  eta: number | null;
  expires: number | null;
  retries: number;
}

/** Why a delivery cannot run: dead-letter it with `reason`; store FAILURE when `id` is known. */
export interface Refusal {
  reason: string;
  /** What to store as the failure: exc type and message. */
  excType: string;
  id: string | null;
  name: string | null;
  /** The decoded message, when decoding got that far (for errbacks and meta). */
  message: TaskMessage | null;
}

/**
 * Decodes a delivery and checks it against the registry, without running anything. Never throws:
 * bad input becomes a Refusal with a reason that names what was wrong.
 */
export function prepare(
  delivery: Delivery,
  tasks: ReadonlyMap<string, Task<never[], unknown>>,
  maxDeliveries: number,
): Job | Refusal {
  if (!delivery.message) {
    return {
      reason: `undecodable message: ${delivery.error ?? 'unknown framing error'}`,
      excType: 'MalformedMessage',
      id: null,
      name: null,
      message: null,
    };
  }
  let message: TaskMessage;
  try {
    message = decodeTask(delivery.message);
  } catch (err) {
    const id = typeof delivery.message.headers.id === 'string' ? delivery.message.headers.id : null;
    const name = typeof delivery.message.headers.task === 'string' ? delivery.message.headers.task : null;
    const why = err instanceof MalformedMessageError ? err.message : String(err);
    return { reason: `malformed message: ${why}`, excType: 'MalformedMessage', id, name, message: null };
  }
  const { id, task: name } = message.headers;
  if (delivery.deliveryCount > maxDeliveries) {
    return {
      reason: `poison message: delivered ${delivery.deliveryCount} times (maxDeliveries ${maxDeliveries})`,
      excType: 'PoisonMessage',
      id,
      name,
      message,
    };
  }
  const task = tasks.get(name);
  if (!task)
    return {
      reason: `unknown task '${name}' (not registered in this worker)`,
      excType: 'NotRegistered',
      id,
      name,
      message,
    };
  let eta: number | null = null;
  let expires: number | null = null;
  try {
    eta = message.headers.eta ? parseCeleryDate(message.headers.eta) : null;
    expires = message.headers.expires ? parseCeleryDate(message.headers.expires) : null;
  } catch (err) {
    return {
      reason: `malformed message: ${(err as Error).message}`,
      excType: 'MalformedMessage',
      id,
      name,
      message,
    };
  }
  const event =
    typeof message.headers[EVENT_HEADER] === 'string' ? (message.headers[EVENT_HEADER] as string) : null;
  let args = message.args;
  let kwargs = message.kwargs;
  if (event !== null) {
    // An event's fields travel as kwargs (DESIGN.md §2); a TypeScript subscriber gets them as one object.
    args = [kwargs];
    kwargs = {};
  } else if (task.options.params && Object.keys(kwargs).length > 0) {
    ({ args, kwargs } = mapParams(task.options.params, args, kwargs));
  }
  return {
    delivery,
    message,
    task,
    id,
    name,
    args,
    kwargs,
    event,
    eta,
    expires,
    retries: message.headers.retries ?? 0,
  };
}

/** Places keyword args named in `params` at their positions; the rest stay kwargs. */
export function mapParams(params: readonly string[], args: unknown[], kwargs: Record<string, unknown>) {
  const out = [...args];
  const rest: Record<string, unknown> = {};
  let highest = out.length - 1;
  for (const [key, value] of Object.entries(kwargs)) {
    const index = params.indexOf(key);
    if (index < 0 || index < args.length) {
      rest[key] = value;
      continue;
    }
    out[index] = value;
    highest = Math.max(highest, index);
  }
  out.length = highest + 1;
  return { args: out, kwargs: rest };
}

export function isRefusal(x: Job | Refusal): x is Refusal {
  return 'reason' in x;
}
