import type { WireMessage } from '../../messages/types.js';
import { Deque } from './deque.js';

/** A message held by the memory broker, with how many times it has been handed to a consumer. */
export interface StoredMessage {
  readonly queue: string;
  readonly message: WireMessage;
  /** Deliveries so far; the next delivery reports `deliveries + 1` as its deliveryCount. */
  deliveries: number;
}

const LEVELS = 10;

/** Clamps an API priority to 0–9 (9 most urgent); anything that is not a number counts as 0. */
export function clampPriority(priority: unknown): number {
  if (typeof priority !== 'number' || !Number.isFinite(priority)) return 0;
  return Math.min(LEVELS - 1, Math.max(0, Math.round(priority)));
}

/**
 * One queue's ready messages: a FIFO per priority level, served 9 first, FIFO within a level.
 *
 * @example
 * const q = new PriorityQueue();
 * q.push({ queue: 'celery', message, deliveries: 0 });
 * q.shift()?.message === message; // true
 */
export class PriorityQueue {
  private readonly levels: (Deque<StoredMessage> | undefined)[] = new Array(LEVELS);
  private size = 0;

  get length(): number {
    return this.size;
  }

  /** Adds at the tail of its priority level. */
  push(stored: StoredMessage): void {
    this.level(stored).push(stored);
    this.size++;
  }

  /** Adds at the head of its priority level (a message given back keeps its place in line). */
  unshift(stored: StoredMessage): void {
    this.level(stored).unshift(stored);
    this.size++;
  }

  /** The next message to serve: highest priority first, FIFO within a priority. */
  shift(): StoredMessage | undefined {
    if (this.size === 0) return undefined;
    for (let p = LEVELS - 1; p >= 0; p--) {
      const level = this.levels[p];
      if (level && level.length > 0) {
        this.size--;
        return level.shift();
      }
    }
    return undefined;
  }

  /** Removes every message; returns how many. */
  clear(): number {
    const n = this.size;
    for (const level of this.levels) level?.clear();
    this.size = 0;
    return n;
  }

  private level(stored: StoredMessage): Deque<StoredMessage> {
    const p = clampPriority(stored.message.priority);
    let level = this.levels[p];
    if (!level) {
      level = new Deque<StoredMessage>();
      this.levels[p] = level;
    }
    return level;
  }
}
