/**
 * A double-ended queue on a growable ring buffer: O(1) push and shift at both ends, so a queue of
 * 100k+ messages drains without the O(n) cost of `Array.prototype.shift`.
 *
 * @example
 * const d = new Deque<number>();
 * d.push(1); d.push(2); d.unshift(0);
 * d.shift(); // 0
 * d.length;  // 2
 */
export class Deque<T> {
  private items: (T | undefined)[];
  private head = 0;
  private size = 0;

  constructor(initialCapacity = 16) {
    // A power of two lets index arithmetic use a mask instead of `%`.
    let capacity = 4;
    while (capacity < initialCapacity) capacity *= 2;
    this.items = new Array<T | undefined>(capacity);
  }

  get length(): number {
    return this.size;
  }

  /** Appends at the tail. */
  push(item: T): void {
    if (this.size === this.items.length) this.grow();
    this.items[(this.head + this.size) & (this.items.length - 1)] = item;
    this.size++;
  }

  /** Prepends at the head (for messages given back by a lost consumer, so they keep their place). */
  unshift(item: T): void {
    if (this.size === this.items.length) this.grow();
    this.head = (this.head - 1) & (this.items.length - 1);
    this.items[this.head] = item;
    this.size++;
  }

  /** Removes and returns the head, or undefined when empty. */
  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined; // let the GC have it
    this.head = (this.head + 1) & (this.items.length - 1);
    this.size--;
    return item;
  }

  /** Removes every item; returns how many there were. */
  clear(): number {
    const n = this.size;
    this.items = new Array<T | undefined>(16);
    this.head = 0;
    this.size = 0;
    return n;
  }

  private grow(): void {
    const old = this.items;
    const next = new Array<T | undefined>(old.length * 2);
    for (let i = 0; i < this.size; i++) next[i] = old[(this.head + i) & (old.length - 1)];
    this.items = next;
    this.head = 0;
  }
}
