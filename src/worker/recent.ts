/**
 * A bounded window of recently succeeded tasks: a redelivered duplicate of a task that already
 * succeeded is acked without running again. Oldest entries leave first (a ring of ids beside the
 * set, so adding allocates nothing once full). Keyed by task id alone (ids are uuids, unique across
 * task names).
 */
export class RecentSet {
  readonly #max: number;
  readonly #keys = new Set<string>();
  readonly #ring: string[] = [];
  #next = 0;

  constructor(max: number) {
    this.#max = Math.max(0, Math.floor(max));
  }

  add(id: string): void {
    if (this.#max === 0 || this.#keys.has(id)) return;
    if (this.#ring.length < this.#max) {
      this.#ring.push(id);
    } else {
      this.#keys.delete(this.#ring[this.#next] as string);
      this.#ring[this.#next] = id;
      this.#next = (this.#next + 1) % this.#max;
    }
    this.#keys.add(id);
  }

  has(id: string): boolean {
    return this.#keys.has(id);
  }

  get size(): number {
    return this.#keys.size;
  }
}
