/**
 * Monitoring events on the wire: a JSON body (one event, or a list of task events under
 * `task.multi`), headers `{"hostname": <sender>}`, delivery_mode 1, as Celery's EventDispatcher
 * sends them (fixtures redis-events.json, amqp-events.json).
 */
import { dumps, loads } from '../../messages/json.js';
import type { WireMessage } from '../../messages/types.js';
import type { CeleryEvent } from './types.js';

/**
 * The wire message for one event or a batch. `priority` is the API priority the transport maps to
 * Celery's default wire priority (its `defaultPriority`).
 *
 * @example
 * await fanout.publish('celeryev', 'task.multi', encodeEvents([e1, e2], 'w1@host', 9));
 */
export function encodeEvents(
  events: CeleryEvent | readonly CeleryEvent[],
  hostname: string,
  priority: number,
): WireMessage {
  return {
    headers: { hostname },
    properties: { delivery_mode: 1 },
    priority,
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    body: dumps(events, { allowBigInt: true }),
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The events in a received message: one for a single event, each element of a `task.multi` list
 * (possibly none: Celery's periodic flush publishes empty batches). Anything that is not an event
 * object with a string `type` is left out; a body that is not JSON yields no events.
 */
export function decodeEvents(message: WireMessage): CeleryEvent[] {
  if (message.contentType && message.contentType !== 'application/json') return [];
  let body: unknown;
  try {
    body = loads(message.body);
  } catch {
    return [];
  }
  const items = Array.isArray(body) ? body : [body];
  const out: CeleryEvent[] = [];
  for (const item of items) {
    if (!isRecord(item) || typeof item.type !== 'string') continue;
    const hostname =
      typeof item.hostname === 'string'
        ? item.hostname
        : typeof message.headers.hostname === 'string'
          ? message.headers.hostname
          : '';
    out.push({
      ...item,
      type: item.type,
      hostname,
      utcoffset: typeof item.utcoffset === 'number' ? item.utcoffset : 0,
      pid: typeof item.pid === 'number' ? item.pid : 0,
      clock: typeof item.clock === 'number' ? item.clock : 0,
      timestamp: typeof item.timestamp === 'number' ? item.timestamp : Date.now() / 1000,
    } as CeleryEvent);
  }
  return out;
}
