import type { WireMessage } from '../../messages/types.js';
import type { Fanout } from '../transport.js';
import type { MemoryBroker } from './broker.js';

interface Subscriber {
  exchange: string;
  binding: string;
  onMessage: (message: WireMessage, routingKey: string) => void;
}

/**
 * AMQP topic matching: words split on `.`, `*` one word, `#` zero or more words; `''` and `#` match
 * every routing key (a fanout binding).
 *
 * @example
 * topicMatches('task.*', 'task.sent') // true
 * topicMatches('task.#', 'task') // true
 */
export function topicMatches(binding: string, routingKey: string): boolean {
  if (binding === '' || binding === '#') return true;
  const pattern = binding.split('.');
  const words = routingKey === '' ? [] : routingKey.split('.');
  const match = (p: number, w: number): boolean => {
    if (p === pattern.length) return w === words.length;
    const part = pattern[p];
    if (part === '#') {
      for (let k = w; k <= words.length; k++) if (match(p + 1, k)) return true;
      return false;
    }
    if (w === words.length) return false;
    return (part === '*' || part === words[w]) && match(p + 1, w + 1);
  };
  return match(0, 0);
}

/** Subscribers per broker: every memory transport of the same name shares them, as it shares queues. */
const hubs = new WeakMap<MemoryBroker, Set<Subscriber>>();

function hubOf(broker: MemoryBroker): Set<Subscriber> {
  let hub = hubs.get(broker);
  if (!hub) {
    hub = new Set();
    hubs.set(broker, hub);
  }
  return hub;
}

/**
 * In-process fan-out for the memory broker: at-most-once, to the subscribers live at publish time,
 * each with its own copy, delivered on a later macrotask (as a broker would). Exchange kinds do not
 * matter in memory: a direct exchange (pidbox replies) is a topic binding on the exact key.
 *
 * @example
 * const off = await transport.fanout.subscribe('celery.pidbox', '', (m) => console.log(m.body));
 * await transport.fanout.publish('celery.pidbox', '', message);
 */
export class MemoryFanout implements Fanout {
  constructor(private readonly broker: () => MemoryBroker) {}

  async publish(exchange: string, routingKey: string, message: WireMessage): Promise<void> {
    const hub = hubOf(this.broker());
    const targets = [...hub].filter((s) => s.exchange === exchange && topicMatches(s.binding, routingKey));
    if (!targets.length) return;
    setImmediate(() => {
      for (const s of targets) {
        if (!hub.has(s)) continue;
        try {
          s.onMessage(structuredClone(message), routingKey);
        } catch (err) {
          process.emitWarning(`memory fanout: subscriber of ${exchange} threw: ${String(err)}`);
        }
      }
    });
  }

  async subscribe(
    exchange: string,
    bindingKey: string,
    onMessage: (message: WireMessage, routingKey: string) => void,
  ): Promise<() => Promise<void>> {
    const hub = hubOf(this.broker());
    const subscriber: Subscriber = { exchange, binding: bindingKey, onMessage };
    hub.add(subscriber);
    return async () => {
      hub.delete(subscriber);
    };
  }
}
