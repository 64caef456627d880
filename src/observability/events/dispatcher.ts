import type { Fanout } from '../../brokers/transport.js';
import type { Logger } from '../../logging.js';
import { LamportClock } from './clock.js';
import { encodeEvents } from './codec.js';
import type { CeleryEvent, CeleryEventFields, CeleryEventType } from './types.js';
import { EVENT_EXCHANGE, routingKeyOf, TASK_EVENT_TYPES } from './types.js';

export interface EventDispatcherOptions {
  /** The broker's fan-out port, or a promise of it (events sent meanwhile wait, in order). */
  fanout: Fanout | Promise<Fanout>;
  /** The sender's node name (`celeriac@host`, or `gen<pid>@host` for a publisher). */
  hostname: string;
  /** API priority that maps to Celery's default wire priority on this broker (transport.defaultPriority). */
  priority?: number | Promise<number>;
  /** Task events are batched under `task.multi` and flushed this often (ms). Default 100. */
  flushIntervalMs?: number;
  /** …or as soon as this many are buffered. Default 24. */
  bufferLimit?: number;
  /** Batch task events (a worker does, as Celery's with its hub); a publisher sends them one by one. Default true. */
  batch?: boolean;
  clock?: LamportClock;
  log?: Logger;
}

const TASK_TYPES: ReadonlySet<string> = new Set(TASK_EVENT_TYPES);

/** Hours west of UTC, as Python's `time.timezone // 3600`. */
function utcoffset(): number {
  return Math.floor(new Date(new Date().getFullYear(), 0, 1).getTimezoneOffset() / 60);
}

/**
 * Sends Celery monitoring events on the `celeryev` fan-out, as Celery's EventDispatcher: common
 * fields first (`hostname, utcoffset, pid, clock`), then the event's, then `timestamp, type`; a
 * Lamport clock tick per event; task events batched under the routing key `task.multi` (a JSON
 * list), worker events sent singly. At-most-once: a failed publish is logged and dropped.
 *
 * @example
 * const d = new EventDispatcher({ fanout: transport.fanout, hostname: 'w1@host' });
 * d.send('task-started', { uuid: id });
 * await d.close();
 */
export class EventDispatcher {
  readonly hostname: string;
  readonly clock: LamportClock;
  readonly #fanout: Promise<Fanout>;
  readonly #priority: Promise<number>;
  readonly #flushMs: number;
  readonly #limit: number;
  readonly #batch: boolean;
  readonly #log: Logger | undefined;
  readonly #offset = utcoffset();
  #buffer: CeleryEvent[] = [];
  #timer: NodeJS.Timeout | null = null;
  #chain: Promise<void> = Promise.resolve();
  #closed = false;
  #warned = false;

  constructor(options: EventDispatcherOptions) {
    this.hostname = options.hostname;
    this.clock = options.clock ?? new LamportClock();
    this.#fanout = Promise.resolve(options.fanout);
    this.#fanout.catch(() => {}); // reported by the first publish
    this.#priority = Promise.resolve(options.priority ?? 0).catch(() => 0);
    this.#flushMs = options.flushIntervalMs ?? 100;
    this.#limit = options.bufferLimit ?? 24;
    this.#batch = options.batch ?? true;
    this.#log = options.log;
  }

  /** Builds an event with the common fields and a clock tick. */
  event<T extends CeleryEventType>(type: T, fields: CeleryEventFields[T]): CeleryEvent {
    return {
      hostname: this.hostname,
      utcoffset: this.#offset,
      pid: process.pid,
      clock: this.clock.forward(),
      ...fields,
      timestamp: Date.now() / 1000,
      type,
    } as CeleryEvent;
  }

  /** Sends an event: task events go to the batch, others out at once. Never throws. */
  send<T extends CeleryEventType>(type: T, fields: CeleryEventFields[T]): void {
    if (this.#closed) return;
    const event = this.event(type, fields);
    if (this.#batch && TASK_TYPES.has(type)) {
      this.#buffer.push(event);
      if (this.#buffer.length >= this.#limit) this.#flushNow();
      else this.#timer ??= setTimeout(() => this.#flushNow(), this.#flushMs);
      return;
    }
    // Whatever was batched before this event goes first, so the order on the wire is the clock's.
    if (this.#buffer.length) this.#flushNow();
    this.#enqueue(routingKeyOf(type), event);
  }

  /** Sends the batched task events now; resolves when everything sent so far is published. */
  async flush(): Promise<void> {
    this.#flushNow();
    await this.#chain;
  }

  /** Flushes, waits for pending publishes, and sends nothing more. */
  async close(): Promise<void> {
    if (this.#closed) return this.#chain;
    await this.flush();
    this.#closed = true;
  }

  #flushNow(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (!this.#buffer.length) return;
    const batch = this.#buffer;
    this.#buffer = [];
    this.#enqueue('task.multi', batch);
  }

  #enqueue(routingKey: string, body: CeleryEvent | CeleryEvent[]): void {
    this.#chain = this.#chain.then(async () => {
      try {
        const fanout = await this.#fanout;
        const message = encodeEvents(body, this.hostname, await this.#priority);
        await fanout.publish(EVENT_EXCHANGE, routingKey, message);
      } catch (err) {
        if (!this.#warned) {
          this.#warned = true;
          this.#log?.warn(
            { err, routingKey },
            'could not send a monitoring event (dropped; events are at-most-once)',
          );
        }
      }
    });
  }
}
