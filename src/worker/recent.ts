/**
 * A bounded window of recently succeeded (task name, task id) pairs: a redelivered duplicate of a
 * task that already succeeded is acked without running again. Oldest entries leave first.
 */
export class RecentSet {
  readonly #max: number;
  readonly #keys = new Set<string>();

  constructor(max: number) {
    this.#max = Math.max(0, Math.floor(max));
  }

  add(name: string, id: string): void {
    if (this.#max === 0) return;
    const key = `${name}\0${id}`;
    this.#keys.delete(key);
    this.#keys.add(key);
    if (this.#keys.size > this.#max) this.#keys.delete(this.#keys.values().next().value as string);
  }

  has(name: string, id: string): boolean {
    return this.#keys.has(`${name}\0${id}`);
  }

  get size(): number {
    return this.#keys.size;
  }
}
