import type { RevocationStore } from '../transport.js';
import type { RedisTransport } from './transport.js';

/**
 * Revoked task ids in Redis: one sorted set `<p>celeriac.revoked`, member = task id, score = expiry
 * (epoch ms). One key (not one key per id) so that a starting worker reads every revoke with one
 * command, and expired entries are trimmed on each read and write (`ZREMRANGEBYSCORE -inf now`),
 * so the set never grows past the revokes of the last expiry window. Re-adding an id keeps the
 * later expiry (`ZADD GT`). Celeriac's own: Python workers keep revokes in memory only.
 *
 * @example
 * await transport.revocations.add([id], Date.now() + 3 * 3600_000);
 * await transport.revocations.list(); // [id]
 */
export class RedisRevocations implements RevocationStore {
  constructor(private readonly t: RedisTransport) {}

  /** The sorted set's key. */
  get key(): string {
    return `${this.t.keys.prefix}celeriac.revoked`;
  }

  async add(ids: readonly string[], expiresAt: number): Promise<void> {
    if (!ids.length) return;
    const score = Math.round(expiresAt);
    const members: Array<string | number> = [];
    for (const id of ids) members.push(score, id);
    // GT only restricts updates (an absent id is added): a re-revoke never shortens an expiry.
    const reply = await this.t
      .redis()
      .multi()
      .zremrangebyscore(this.key, '-inf', Date.now())
      .zadd(this.key, 'GT', ...members)
      .exec();
    const failed = reply?.find(([err]) => err);
    if (failed?.[0]) throw failed[0];
  }

  async list(): Promise<string[]> {
    const now = Date.now();
    const reply = await this.t
      .redis()
      .multi()
      .zremrangebyscore(this.key, '-inf', now)
      .zrangebyscore(this.key, `(${now}`, '+inf')
      .exec();
    const second = reply?.[1];
    if (!second || second[0]) throw second?.[0] ?? new Error('reading revoked ids failed');
    return second[1] as string[];
  }
}
