/**
 * Celery's monitoring events (PROTOCOL.md §6), by their wire field names, so `celery events`,
 * Flower and Celeriac read each other's. Every event carries the common fields; the rest depend on
 * the type. Reprs (`args`, `kwargs`, `result`, `exception`) are Python repr strings, as Celery sends
 * them.
 */

/** Fields every event carries. `timestamp` is epoch seconds (float); `utcoffset` hours west of UTC. */
export interface EventCommon {
  hostname: string;
  utcoffset: number;
  pid: number;
  /** Lamport clock of the sender. */
  clock: number;
  timestamp: number;
}

/** The extra fields of each event type, as Celery 5.2 sends them. */
export interface CeleryEventFields {
  'task-sent': {
    uuid: string;
    root_id: string | null;
    parent_id: string | null;
    name: string;
    args: string;
    kwargs: string;
    retries: number;
    eta: string | null;
    expires: string | null;
    queue: string;
    exchange: string;
    routing_key: string;
  };
  'task-received': {
    uuid: string;
    name: string;
    args: string;
    kwargs: string;
    root_id: string | null;
    parent_id: string | null;
    retries: number;
    eta: string | null;
    expires: string | null;
  };
  'task-started': { uuid: string };
  'task-succeeded': { uuid: string; result: string; runtime: number };
  'task-failed': { uuid: string; exception: string; traceback: string | null };
  'task-retried': { uuid: string; exception: string; traceback: string | null };
  'task-revoked': { uuid: string; terminated: boolean; signum: string | number | null; expired: boolean };
  'task-rejected': { uuid: string | null; requeue: boolean };
  'worker-online': WorkerFields;
  'worker-heartbeat': WorkerFields;
  'worker-offline': WorkerFields;
}

/** What worker-online / -heartbeat / -offline carry. */
export interface WorkerFields {
  /** Heartbeat interval in seconds (2.0). */
  freq: number;
  active: number;
  processed: number;
  loadavg: number[];
  sw_ident: string;
  sw_ver: string;
  sw_sys: string;
}

export type CeleryEventType = keyof CeleryEventFields;

/** One event of a known type, as on the wire. */
export type TypedCeleryEvent<T extends CeleryEventType> = EventCommon & CeleryEventFields[T] & { type: T };

/**
 * An event as sent or received: the common fields, its type, and whatever other fields it had
 * (custom event types included). Narrow a known type with `isEvent(event, 'task-succeeded')`.
 */
export type CeleryEvent = EventCommon & { type: string; [field: string]: unknown };

/** The task event types, which a worker batches under the `task.multi` routing key. */
export const TASK_EVENT_TYPES: readonly CeleryEventType[] = [
  'task-sent',
  'task-received',
  'task-started',
  'task-succeeded',
  'task-failed',
  'task-retried',
  'task-revoked',
  'task-rejected',
];

/** The exchange (AMQP) / channel prefix (Redis) Celery's events travel on. */
export const EVENT_EXCHANGE = 'celeryev';

/** Routing key of an event type: `task-sent` → `task.sent`. */
export function routingKeyOf(type: string): string {
  return type.replace(/-/g, '.');
}

/** True for an event of the given known type (narrows the union). */
export function isEvent<T extends CeleryEventType>(
  event: CeleryEvent,
  type: T,
): event is CeleryEvent & TypedCeleryEvent<T> {
  return event.type === type;
}
