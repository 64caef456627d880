import { MemoryResultStore } from './store.js';

interface Entry {
  store: MemoryResultStore;
  refs: number;
}

/** Process-global: every memory sink with the same URL host in this process shares a store. */
const stores = new Map<string, Entry>();

/**
 * The store named by a `memory://` URL's host, created on first use; the caller holds a reference
 * until it calls `releaseStore`.
 *
 * @example
 * const store = acquireStore(''); // memory://
 * releaseStore('', store);
 */
export function acquireStore(name: string): MemoryResultStore {
  let entry = stores.get(name);
  if (!entry) {
    entry = { store: new MemoryResultStore(), refs: 0 };
    stores.set(name, entry);
  }
  entry.refs++;
  return entry.store;
}

/** Drops a reference; the last one destroys the store (its results, counters and sweeper). */
export function releaseStore(name: string, store: MemoryResultStore): void {
  const entry = stores.get(name);
  if (!entry || entry.store !== store) return;
  entry.refs--;
  if (entry.refs <= 0) {
    stores.delete(name);
    store.destroy();
  }
}
