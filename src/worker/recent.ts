/**
 * A bounded window of recently succeeded tasks: a redelivered duplicate of a task that already
 * succeeded is acked without running again. Oldest entries leave first. Keyed by task id alone (ids
 * are uuids, unique across task names).
 */
export class RecentSet {
  readonly #max: number;
  readonly #keys = new Set<string>();

  constructor(max: number) {
    this.#max = Math.max(0, Math.floor(max));
  }

  add(id: string): void {
    if (this.#max === 0) return;
    const key = id;
    this.#keys.delete(key);
    this.#keys.add(key);
    if (this.#keys.size > this.#max) this.#keys.delete(this.#keys.values().next().value as string);
  }

  has(id: string): boolean {
    return this.#keys.has(id);
  }

  get size(): number {
    return this.#keys.size;
  }
}
