import type { Fanout } from '../../brokers/transport.js';
import { LamportClock } from './clock.js';
import { decodeEvents } from './codec.js';
import type { CeleryEvent } from './types.js';
import { EVENT_EXCHANGE } from './types.js';

export interface EventReceiverOptions {
  /** Routing keys to receive (AMQP topic syntax): `#` every event (default), `task.#`, `worker.*`… */
  bindingKey?: string;
  /** Merged with every received clock (Celery's receiver adjusts its app clock). */
  clock?: LamportClock;
}

/**
 * Receives Celery monitoring events from the `celeryev` fan-out: from Celeriac workers and Python
 * Celery workers alike, `task.multi` batches unpacked into single events, in the order they came.
 * At-most-once: only events sent while it listens arrive.
 *
 * @example
 * const receiver = await EventReceiver.start(transport.fanout, (e) => console.log(e.type, e.hostname));
 * // …
 * await receiver.close();
 */
export class EventReceiver {
  readonly clock: LamportClock;
  readonly #off: () => Promise<void>;

  private constructor(clock: LamportClock, off: () => Promise<void>) {
    this.clock = clock;
    this.#off = off;
  }

  /** Subscribes and resolves once events can arrive. */
  static async start(
    fanout: Fanout,
    handler: (event: CeleryEvent) => void,
    options: EventReceiverOptions = {},
  ): Promise<EventReceiver> {
    const clock = options.clock ?? new LamportClock();
    const off = await fanout.subscribe(EVENT_EXCHANGE, options.bindingKey ?? '#', (message) => {
      for (const event of decodeEvents(message)) {
        clock.adjust(event.clock);
        handler(event);
      }
    });
    return new EventReceiver(clock, off);
  }

  /** Stops receiving. Idempotent. */
  async close(): Promise<void> {
    await this.#off();
  }
}
