/**
 * Key layout. Two layouts, one interface:
 *
 * **kombu** (`redis://`, `rediss://`, `redis+sentinel://`): exactly kombu's Redis transport, so a
 * Python Celery worker and a Celeriac worker share queues (PROTOCOL.md section 4):
 *
 * | key | type | what |
 * |---|---|---|
 * | `<q>`, `<q>\x06\x163`, `…6`, `…9` | list | ready envelopes per priority step (LPUSH in, RPOP out) |
 * | `_kombu.binding.<q>` | set | `<q>\x06\x16\x06\x16<q>`, written when the queue is declared |
 * | `unacked` | hash | delivery_tag → `[envelope, exchange, routing_key]` |
 * | `unacked_index` | zset | delivery_tag → lease score (see consumer.ts) |
 * | `unacked_mutex` | string | kombu's restore lock |
 * | `celeriac.deliveries` | hash | delivery_tag → deliveries before the current one (absent = 0) |
 * | `celeriac.delayed.<q>` | zset | parked messages (eta beyond the horizon, `notBefore`) |
 * | `celeriac.dead.<q>` | list | dead letters, JSON records |
 * | `celeriac.wake.<q>` | list | wake-up tokens for idle Celeriac consumers (fewer than 96) |
 * | `celeriac.subscriptions.<event>` | set | `task\x06\x16queue` per subscriber |
 *
 * **cluster** (`redis+cluster://`, Celeriac-only: kombu cannot run on Cluster): every key of queue
 * `q` starts with the hash tag `{q}`, so they share one slot and each script stays on one node:
 * `{q}`, `{q}\x06\x163`…, `{q}.unacked`, `{q}.unacked_index`, `{q}.unacked_mutex`,
 * `{q}.deliveries`, `{q}.delayed`, `{q}.dead`, `{q}.wake`. Consequences: a publish of several
 * messages is atomic per queue (per slot), not across queues: an event fanned out to subscribers on
 * different queues is written by one script per queue; priority order holds within a queue, and a
 * consumer of several queues takes from them in turn.
 *
 * `global_keyprefix` (kombu's meaning) is prepended to every key and pub/sub channel in both layouts.
 */
export const SEP = '\x06\x16';
/** kombu's default priority_steps. */
export const STEPS = [0, 3, 6, 9] as const;

export interface KeyLayout {
  readonly cluster: boolean;
  readonly prefix: string;
  /** The list for one priority step (0, 3, 6, 9) of a queue. */
  list(queue: string, step: number): string;
  /** The four lists of a queue in serving order (step 0 first). */
  lists(queue: string): string[];
  unacked(queue: string): string;
  unackedIndex(queue: string): string;
  unackedMutex(queue: string): string;
  deliveries(queue: string): string;
  delayed(queue: string): string;
  dead(queue: string): string;
  wake(queue: string): string;
  /** kombu's binding set of a queue's exchange, or null on Cluster (no kombu there). */
  binding(queue: string): string | null;
  subscriptions(event: string): string;
  /** Which keys must live together: the queue itself on Cluster, '' (one group) otherwise. */
  group(queue: string): string;
}

export function kombuLayout(prefix: string): KeyLayout {
  return {
    cluster: false,
    prefix,
    list: (q, step) => (step === 0 ? prefix + q : `${prefix}${q}${SEP}${step}`),
    lists: (q) => STEPS.map((s) => (s === 0 ? prefix + q : `${prefix}${q}${SEP}${s}`)),
    unacked: () => `${prefix}unacked`,
    unackedIndex: () => `${prefix}unacked_index`,
    unackedMutex: () => `${prefix}unacked_mutex`,
    deliveries: () => `${prefix}celeriac.deliveries`,
    delayed: (q) => `${prefix}celeriac.delayed.${q}`,
    dead: (q) => `${prefix}celeriac.dead.${q}`,
    wake: (q) => `${prefix}celeriac.wake.${q}`,
    binding: (q) => `${prefix}_kombu.binding.${q}`,
    subscriptions: (e) => `${prefix}celeriac.subscriptions.${e}`,
    group: () => '',
  };
}

export function clusterLayout(prefix: string): KeyLayout {
  const t = (q: string): string => `${prefix}{${q}}`;
  return {
    cluster: true,
    prefix,
    list: (q, step) => (step === 0 ? t(q) : `${t(q)}${SEP}${step}`),
    lists: (q) => STEPS.map((s) => (s === 0 ? t(q) : `${t(q)}${SEP}${s}`)),
    unacked: (q) => `${t(q)}.unacked`,
    unackedIndex: (q) => `${t(q)}.unacked_index`,
    unackedMutex: (q) => `${t(q)}.unacked_mutex`,
    deliveries: (q) => `${t(q)}.deliveries`,
    delayed: (q) => `${t(q)}.delayed`,
    dead: (q) => `${t(q)}.dead`,
    wake: (q) => `${t(q)}.wake`,
    binding: () => null,
    subscriptions: (e) => `${prefix}celeriac.subscriptions.${e}`,
    group: (q) => q,
  };
}

/** kombu's priority step of a *wire* priority (0 = served first): the largest step ≤ p. */
export function stepOf(wirePriority: number): number {
  let step = 0;
  for (const s of STEPS) if (wirePriority >= s) step = s;
  return step;
}
