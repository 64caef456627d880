import type { Subscription } from '../transport.js';

/** The pair as one key; NUL cannot occur in a task or queue name that any broker accepts. */
const keyOf = (s: Subscription): string => `${s.task}\u0000${s.queue}`;

/**
 * Event subscriptions in the memory broker: a map from event name to a set of (task, queue) pairs.
 * Adding a pair twice keeps one.
 *
 * @example
 * const subs = new SubscriptionBook();
 * subs.add('user.registered', { task: 'emails.welcome', queue: 'emails' });
 * subs.list('user.registered'); // [{ task: 'emails.welcome', queue: 'emails' }]
 */
export class SubscriptionBook {
  private readonly byEvent = new Map<string, Set<string>>();

  add(event: string, subscription: Subscription): void {
    let set = this.byEvent.get(event);
    if (!set) {
      set = new Set();
      this.byEvent.set(event, set);
    }
    set.add(keyOf(subscription));
  }

  remove(event: string, subscription: Subscription): void {
    const set = this.byEvent.get(event);
    if (!set) return;
    set.delete(keyOf(subscription));
    if (set.size === 0) this.byEvent.delete(event);
  }

  /** In the order they were added. */
  list(event: string): Subscription[] {
    return [...(this.byEvent.get(event) ?? [])].map((key) => {
      const cut = key.indexOf('\u0000');
      return { task: key.slice(0, cut), queue: key.slice(cut + 1) };
    });
  }

  clear(): void {
    this.byEvent.clear();
  }
}
