import type { RevocationStore } from '../transport.js';
import type { MemoryBroker } from './broker.js';

/** Revoked ids per broker (id → expiry, epoch ms), shared by every memory transport of the same name. */
const books = new WeakMap<MemoryBroker, Map<string, number>>();

/**
 * Revoked task ids in the memory broker, with their expiry: a worker that starts after a revoke (on
 * the same `memory://name` broker) sees it. Expired ids are dropped when listed. Re-adding an id
 * keeps the later expiry.
 *
 * @example
 * await transport.revocations.add([id], Date.now() + 3_600_000);
 * await transport.revocations.list(); // [id]
 */
export class MemoryRevocations implements RevocationStore {
  constructor(private readonly broker: () => MemoryBroker) {}

  async add(ids: readonly string[], expiresAt: number): Promise<void> {
    const book = this.#book();
    for (const id of ids) book.set(id, Math.max(book.get(id) ?? 0, expiresAt));
  }

  async list(): Promise<string[]> {
    const book = this.#book();
    const now = Date.now();
    for (const [id, expiresAt] of book) if (expiresAt <= now) book.delete(id);
    return [...book.keys()];
  }

  #book(): Map<string, number> {
    const broker = this.broker();
    let book = books.get(broker);
    if (!book) {
      book = new Map();
      books.set(broker, book);
    }
    return book;
  }
}
