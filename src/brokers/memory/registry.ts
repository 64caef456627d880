import { MemoryBroker } from './broker.js';

interface Entry {
  broker: MemoryBroker;
  refs: number;
}

/** Process-global: every memory transport with the same URL host in this process shares a broker. */
const brokers = new Map<string, Entry>();

/**
 * The broker named by a `memory://` URL's host, created on first use; the caller holds a reference
 * until it calls `release`. `memory://` is the name '' (the default broker), `memory://jobs` is 'jobs'.
 *
 * @example
 * const broker = acquireBroker('jobs'); // …and once done:
 * releaseBroker('jobs', broker);
 */
export function acquireBroker(name: string): MemoryBroker {
  let entry = brokers.get(name);
  if (!entry) {
    entry = { broker: new MemoryBroker(), refs: 0 };
    brokers.set(name, entry);
  }
  entry.refs++;
  return entry.broker;
}

/** Drops a reference; the last one destroys the broker (its messages, timers and dead letters). */
export function releaseBroker(name: string, broker: MemoryBroker): void {
  const entry = brokers.get(name);
  if (!entry || entry.broker !== broker) return;
  entry.refs--;
  if (entry.refs <= 0) {
    brokers.delete(name);
    broker.destroy();
  }
}
