import type { WireMessage } from '../../messages/types.js';
import type { DeadLetter } from '../transport.js';

/**
 * The memory broker's dead letters, kept per queue in insertion order. Replay hands each message to
 * `enqueue` as a fresh message (its delivery count starts again), so a poison message that was
 * dead-lettered for too many deliveries gets a full set of attempts after a fix.
 *
 * @example
 * const dead = new DeadLetterBook((queue, message) => broker.enqueue(queue, message));
 * dead.add('celery', message, 'poison: delivered 6 times');
 * dead.replay('celery'); // 1
 */
export class DeadLetterBook {
  private readonly byQueue = new Map<string, Map<string, DeadLetter>>();
  private seq = 0;

  constructor(private readonly enqueue: (queue: string, message: WireMessage) => void) {}

  add(queue: string, message: WireMessage, reason: string): DeadLetter {
    const letter: DeadLetter = { id: `dl-${++this.seq}`, queue, reason, at: Date.now(), message };
    let letters = this.byQueue.get(queue);
    if (!letters) {
      letters = new Map();
      this.byQueue.set(queue, letters);
    }
    letters.set(letter.id, letter);
    return letter;
  }

  /** Oldest first; copies, so callers cannot edit the book. */
  list(queue: string, limit = Number.POSITIVE_INFINITY): DeadLetter[] {
    const out: DeadLetter[] = [];
    for (const letter of this.byQueue.get(queue)?.values() ?? []) {
      if (out.length >= limit) break;
      out.push({ ...letter });
    }
    return out;
  }

  /** Puts letters back on their queue (all, or those in `ids`), oldest first; returns how many. */
  replay(queue: string, ids?: readonly string[]): number {
    const letters = this.byQueue.get(queue);
    if (!letters) return 0;
    const chosen = ids ? [...letters.values()].filter((l) => ids.includes(l.id)) : [...letters.values()];
    for (const letter of chosen) {
      letters.delete(letter.id);
      if (letter.message) this.enqueue(queue, letter.message);
    }
    if (letters.size === 0) this.byQueue.delete(queue);
    return chosen.length;
  }

  purge(queue: string): number {
    const n = this.byQueue.get(queue)?.size ?? 0;
    this.byQueue.delete(queue);
    return n;
  }

  clear(): void {
    this.byQueue.clear();
  }
}
