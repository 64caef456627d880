/**
 * A Lamport clock, as Celery's `kombu.clocks.LamportClock`: `forward()` before sending, `adjust()`
 * with every clock value received, so events from several senders can be ordered.
 *
 * @example
 * const clock = new LamportClock();
 * clock.forward(); // 1
 * clock.adjust(10); // 11
 */
export class LamportClock {
  #value: number;

  constructor(initial = 0) {
    this.#value = initial;
  }

  get value(): number {
    return this.#value;
  }

  /** Ticks for a local event (a send) and returns the new value. */
  forward(): number {
    this.#value += 1;
    return this.#value;
  }

  /** Merges a received value: max(local, other) + 1. */
  adjust(other: number): number {
    this.#value = Math.max(this.#value, Number.isFinite(other) ? other : 0) + 1;
    return this.#value;
  }
}
