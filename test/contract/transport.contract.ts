import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { Consumer, Delivery, OutgoingMessage, Transport } from '../../src/brokers/transport.js';
import { CeleriacError, ClosedError } from '../../src/errors.js';
import type { WireMessage } from '../../src/messages/types.js';
import { messageId, testMessage } from '../helpers/messages.js';

/** What an adapter's test file hands the suite: a transport, and how to tidy up after it. */
export interface TransportFixture {
  transport: Transport;
  cleanup?: () => Promise<void>;
}

export interface TransportContractOptions {
  /** How long to wait for a delivery that must come (default 5000 ms). */
  waitMs?: number;
  /** How long to watch for a delivery that must not come (default 150 ms). */
  quietMs?: number;
  /** Accepted clock difference between this process and the broker for delayed delivery (default 25 ms). */
  clockToleranceMs?: number;
}

/** Observes one consumer: what it received, when, and how many deliveries it held unsettled at most. */
interface Collector {
  readonly consumer: Consumer;
  readonly deliveries: Delivery[];
  /** Date.now() at each delivery, same index as `deliveries`. */
  readonly arrivals: number[];
  /** The most deliveries held unsettled at once (settle through `ack`/`settleAll` to keep it right). */
  readonly maxUnsettled: number;
  /** Ack every delivery as it arrives (and those held now). */
  autoAck(): Promise<void>;
  ack(delivery: Delivery): Promise<void>;
  /** Resolves once `n` deliveries have arrived in total; rejects after the wait timeout. */
  until(n: number): Promise<Delivery[]>;
  /** Waits `quietMs` and asserts that nothing more arrived. */
  quiet(): Promise<void>;
}

/**
 * The transport contract: the behaviour every broker adapter keeps (see `src/brokers/transport.ts`).
 *
 * `make` is called once or more per test and must return a new, unconnected or connected transport
 * each time; transports made within one test must reach the same broker (two connections to one
 * server, or for memory:// two transports with the same name). Queue and event names are random per
 * test, so a networked broker can be shared with other suites. After each test every transport made
 * is closed, a fresh one purges the test's queues and dead letters, and each `cleanup` runs.
 *
 * @example
 * // test/integration/redis.test.ts
 * transportContract('redis', async () => ({
 *   transport: createTransport(new URL(`redis://localhost:6379/0`), {}),
 * }));
 */
export function transportContract(
  name: string,
  make: () => Promise<TransportFixture>,
  options: TransportContractOptions = {},
): void {
  const waitMs = options.waitMs ?? 5000;
  const quietMs = options.quietMs ?? 150;
  const tolerance = options.clockToleranceMs ?? 25;

  describe(`transport contract: ${name}`, () => {
    const made: TransportFixture[] = [];
    const queues = new Set<string>();

    async function open(): Promise<Transport> {
      const fixture = await make();
      made.push(fixture);
      await fixture.transport.connect();
      return fixture.transport;
    }

    function queue(label: string): string {
      const q = `contract.${label}.${randomUUID().slice(0, 8)}`;
      queues.add(q);
      return q;
    }

    afterEach(async () => {
      for (const fixture of made) await fixture.transport.close();
      if (queues.size > 0) {
        const janitor = await make();
        made.push(janitor);
        await janitor.transport.connect();
        for (const q of queues) {
          await janitor.transport.purge(q);
          await janitor.transport.deadLetters.purge(q);
        }
        await janitor.transport.close();
      }
      for (const fixture of made) await fixture.cleanup?.();
      made.length = 0;
      queues.clear();
    });

    async function collect(
      transport: Transport,
      qs: readonly string[],
      prefetch: number,
    ): Promise<Collector> {
      const deliveries: Delivery[] = [];
      const arrivals: number[] = [];
      const unsettled = new Set<string>();
      const waiters: { n: number; resolve: () => void }[] = [];
      let maxUnsettled = 0;
      let auto = false;
      const ack = async (delivery: Delivery): Promise<void> => {
        // Forget it before the broker hears of it: the broker may hand out the next one at once.
        unsettled.delete(delivery.tag);
        await transport.ack(delivery);
      };
      const consumer = await transport.consume(
        qs,
        (delivery) => {
          deliveries.push(delivery);
          arrivals.push(Date.now());
          unsettled.add(delivery.tag);
          maxUnsettled = Math.max(maxUnsettled, unsettled.size);
          for (const w of waiters.filter((w) => deliveries.length >= w.n)) w.resolve();
          if (auto) void ack(delivery);
        },
        { prefetch },
      );
      return {
        consumer,
        deliveries,
        arrivals,
        get maxUnsettled() {
          return maxUnsettled;
        },
        async autoAck() {
          auto = true;
          for (const d of deliveries.filter((d) => unsettled.has(d.tag))) await ack(d);
        },
        ack,
        async until(n) {
          if (deliveries.length < n) {
            await new Promise<void>((resolve, reject) => {
              const timer = setTimeout(
                () =>
                  reject(new Error(`expected ${n} deliveries within ${waitMs} ms, got ${deliveries.length}`)),
                waitMs,
              );
              waiters.push({
                n,
                resolve: () => {
                  clearTimeout(timer);
                  resolve();
                },
              });
            });
          }
          return deliveries.slice(0, n);
        },
        async quiet() {
          const before = deliveries.length;
          await sleep(quietMs);
          expect(deliveries.length, 'no further delivery expected').toBe(before);
        },
      };
    }

    const ids = (ds: readonly Delivery[]): string[] => ds.map((d) => messageId(d.message));
    const outgoing = (q: string, ms: readonly WireMessage[]): OutgoingMessage[] =>
      ms.map((message) => ({ queue: q, message }));

    it('has a kind and says whether it is shared; connect is idempotent', async () => {
      const t = await open();
      expect(typeof t.kind).toBe('string');
      expect(t.kind.length).toBeGreaterThan(0);
      expect(typeof t.shared).toBe('boolean');
      await t.connect();
      expect(t.health().status).toBe('healthy');
    });

    it('delivers in publish order (FIFO), intact, as first deliveries', async () => {
      const t = await open();
      const q = queue('fifo');
      const batch = [1, 2, 3, 4, 5].map((n) => testMessage({ task: 'tests.add', args: [n, n] }));
      const singles = [6, 7, 8].map((n) =>
        testMessage({ args: [n], kwargs: { n }, headers: { custom: 'x' } }),
      );
      await t.publish(outgoing(q, batch));
      for (const m of singles) await t.publish([{ queue: q, message: m }]);
      const c = await collect(t, [q], 20);
      const got = await c.until(8);
      const all = [...batch, ...singles];
      expect(ids(got)).toEqual(all.map((m) => messageId(m)));
      got.forEach((d, i) => {
        const sent = all[i] as WireMessage;
        expect(d.queue).toBe(q);
        expect(d.deliveryCount).toBe(1);
        expect(d.redelivered).toBe(false);
        expect(d.message?.body).toBe(sent.body);
        expect(d.message?.headers).toEqual(sent.headers);
        expect(d.message?.properties).toMatchObject(sent.properties);
        expect(d.message?.priority).toBe(sent.priority);
        expect(d.message?.contentType).toBe(sent.contentType);
        expect(d.message?.contentEncoding).toBe(sent.contentEncoding);
      });
      expect(new Set(got.map((d) => d.tag)).size).toBe(8);
      await c.quiet();
    });

    it('serves priority 9 before 5 before 0 on one queue, FIFO within a priority', async () => {
      const t = await open();
      const q = queue('priority');
      const sent = [0, 0, 9, 5, 9, 0].map((priority) => testMessage({ priority }));
      await t.publish(outgoing(q, sent));
      const c = await collect(t, [q], 10);
      const got = await c.until(6);
      const expected = [2, 4, 3, 0, 1, 5].map((i) => messageId(sent[i]));
      expect(ids(got)).toEqual(expected);
      expect(got.map((d) => d.message?.priority)).toEqual([9, 9, 5, 0, 0, 0]);
    });

    it('never hands a consumer more than prefetch unsettled deliveries', async () => {
      const t = await open();
      const q = queue('prefetch');
      await t.publish(
        outgoing(
          q,
          Array.from({ length: 10 }, () => testMessage()),
        ),
      );
      const c = await collect(t, [q], 3);
      const first = await c.until(3);
      await c.quiet();
      await c.ack(first[0] as Delivery);
      await c.until(4);
      await c.quiet();
      await c.autoAck();
      await c.until(10);
      expect(c.maxUnsettled).toBe(3);
      expect(await t.depth(q)).toBe(0);
    });

    it('setPrefetch grows and shrinks the credit', async () => {
      const t = await open();
      const q = queue('setprefetch');
      await t.publish(
        outgoing(
          q,
          Array.from({ length: 6 }, () => testMessage()),
        ),
      );
      const c = await collect(t, [q], 1);
      await c.until(1);
      await c.quiet();
      c.consumer.setPrefetch(3);
      const held = await c.until(3);
      await c.quiet();
      c.consumer.setPrefetch(1);
      await c.ack(held[0] as Delivery);
      await c.ack(held[1] as Delivery);
      await c.quiet(); // one still held = the new prefetch
      await c.ack(held[2] as Delivery);
      await c.until(4);
      await c.quiet();
      expect(c.maxUnsettled).toBe(3);
    });

    it('ack removes the message for good', async () => {
      const t = await open();
      const q = queue('ack');
      await t.publish([{ queue: q, message: testMessage() }]);
      const c = await collect(t, [q], 5);
      const [d] = await c.until(1);
      await t.ack(d as Delivery);
      expect(await t.depth(q)).toBe(0);
      await c.consumer.cancel();
      const other = await open();
      const c2 = await collect(other, [q], 5);
      await c2.quiet();
      expect(c2.deliveries).toHaveLength(0);
    });

    it('requeue redelivers the message with redelivered = true and deliveryCount 2', async () => {
      const t = await open();
      const q = queue('requeue');
      const sent = testMessage({ args: [42] });
      await t.publish([{ queue: q, message: sent }]);
      const c = await collect(t, [q], 1);
      const [first] = await c.until(1);
      await t.requeue(first as Delivery);
      const [, again] = await c.until(2);
      expect(messageId(again?.message)).toBe(messageId(sent));
      expect(again?.message?.body).toBe(sent.body);
      expect(again?.redelivered).toBe(true);
      expect(again?.deliveryCount).toBe(2);
      expect(again?.tag).not.toBe(first?.tag);
    });

    it('cancel: deliveries handed out stay owned until settled, the rest goes to other consumers', async () => {
      const t = await open();
      const q = queue('cancel');
      const sent = [1, 2, 3].map((n) => testMessage({ args: [n] }));
      await t.publish(outgoing(q, sent));
      const c1 = await collect(t, [q], 2);
      const held = await c1.until(2);
      await c1.consumer.cancel();
      const c2 = await collect(t, [q], 10);
      const [third] = await c2.until(1);
      expect(messageId(third?.message)).toBe(messageId(sent[2]));
      await c2.quiet(); // the two held by c1 are not redelivered while c1 owns them
      expect(c1.deliveries).toHaveLength(2);
      // Settled, c1 would have all its credit back: a cancelled consumer must still get nothing.
      await t.ack(held[0] as Delivery);
      await t.requeue(held[1] as Delivery);
      const more = [4, 5, 6, 7].map((n) => testMessage({ args: [n] }));
      await t.publish(outgoing(q, more));
      const got = await c2.until(6);
      const back = got.find((d) => messageId(d.message) === messageId(sent[1]));
      expect(back?.deliveryCount).toBe(2);
      expect(ids(got.filter((d) => d !== back && d !== third))).toEqual(more.map((m) => messageId(m)));
      await c2.quiet();
      expect(c1.deliveries).toHaveLength(2);
    });

    it('close: unsettled deliveries go back to the queue for another connection', async () => {
      const t1 = await open();
      const t2 = await open();
      const q = queue('close');
      const sent = [1, 2].map((n) => testMessage({ args: [n] }));
      await t1.publish(outgoing(q, sent));
      const c1 = await collect(t1, [q], 5);
      const held = await c1.until(2);
      await t1.close();
      await expect(t1.ack(held[0] as Delivery)).rejects.toBeInstanceOf(ClosedError);
      const c2 = await collect(t2, [q], 5);
      const got = await c2.until(2);
      expect(ids(got).sort()).toEqual(sent.map((m) => messageId(m)).sort());
      for (const d of got) {
        expect(d.redelivered).toBe(true);
        expect(d.deliveryCount).toBe(2);
      }
      await c2.quiet();
    });

    it('defer hides a message until notBefore, then redelivers it with deliveryCount unchanged', async () => {
      const t = await open();
      const q = queue('defer');
      const sent = testMessage();
      await t.publish([{ queue: q, message: sent }]);
      const c = await collect(t, [q], 5);
      const [first] = await c.until(1);
      const notBefore = Date.now() + 400;
      await t.defer(first as Delivery, notBefore);
      expect(await t.depth(q)).toBe(0);
      await sleep(250);
      expect(c.deliveries).toHaveLength(1);
      const [, again] = await c.until(2);
      expect(c.arrivals[1]).toBeGreaterThanOrEqual(notBefore - tolerance);
      expect(messageId(again?.message)).toBe(messageId(sent));
      expect(again?.deliveryCount).toBe(first?.deliveryCount);
      expect(again?.redelivered).toBe(false);
    });

    it('keeps a message published with notBefore out of the queue until then', async () => {
      const t = await open();
      const q = queue('eta');
      const later = testMessage();
      const now = testMessage();
      const notBefore = Date.now() + 400;
      await t.publish([
        { queue: q, message: later, notBefore },
        { queue: q, message: now },
      ]);
      expect(await t.depth(q)).toBe(1);
      const c = await collect(t, [q], 5);
      const [first] = await c.until(1);
      expect(messageId(first?.message)).toBe(messageId(now));
      await sleep(200);
      expect(c.deliveries).toHaveLength(1);
      const [, second] = await c.until(2);
      expect(messageId(second?.message)).toBe(messageId(later));
      expect(c.arrivals[1]).toBeGreaterThanOrEqual(notBefore - tolerance);
      expect(second?.deliveryCount).toBe(1);
    });

    it('deadLetter keeps the message with its reason; list, replay (all or by id) and purge', async () => {
      const t = await open();
      const q = queue('dead');
      const sent = [1, 2, 3].map((n) => testMessage({ args: [n] }));
      await t.publish(outgoing(q, sent));
      const c = await collect(t, [q], 3);
      const held = await c.until(3);
      const before = Date.now();
      for (const [i, d] of held.entries()) await t.deadLetter(d, `poison #${i}`);
      const after = Date.now();
      expect(await t.depth(q)).toBe(0);

      const letters = await t.deadLetters.list(q);
      expect(letters.map((l) => l.reason)).toEqual(['poison #0', 'poison #1', 'poison #2']);
      expect(letters.map((l) => messageId(l.message))).toEqual(ids(held));
      for (const l of letters) {
        expect(l.queue).toBe(q);
        expect(typeof l.id).toBe('string');
        expect(l.at).toBeGreaterThanOrEqual(before - 1000);
        expect(l.at).toBeLessThanOrEqual(after + 1000);
      }
      expect(new Set(letters.map((l) => l.id)).size).toBe(3);
      expect(await t.deadLetters.list(q, { limit: 2 })).toHaveLength(2);

      const [one] = letters;
      expect(await t.deadLetters.replay(q, { ids: [one?.id as string] })).toBe(1);
      const [back] = (await c.until(4)).slice(3);
      expect(messageId(back?.message)).toBe(messageId(one?.message));
      expect((await t.deadLetters.list(q)).map((l) => l.id)).toEqual(letters.slice(1).map((l) => l.id));

      await c.consumer.cancel();
      expect(await t.deadLetters.replay(q)).toBe(2);
      expect(await t.depth(q)).toBe(2);
      expect(await t.deadLetters.list(q)).toEqual([]);

      const c2 = await collect(t, [q], 5);
      for (const d of await c2.until(2)) await t.deadLetter(d, 'again');
      expect(await t.deadLetters.purge(q)).toBe(2);
      expect(await t.deadLetters.list(q)).toEqual([]);
      expect(await t.deadLetters.purge(q)).toBe(0);
      expect(await t.deadLetters.replay(q)).toBe(0);
    });

    it('depth counts ready messages; purge removes them and says how many', async () => {
      const t = await open();
      const q = queue('depth');
      expect(await t.depth(q)).toBe(0);
      await t.publish(
        outgoing(
          q,
          [1, 2, 3, 4].map(() => testMessage()),
        ),
      );
      await t.publish([{ queue: q, message: testMessage(), notBefore: Date.now() + 60_000 }]);
      expect(await t.depth(q)).toBe(4);
      expect(await t.purge(q)).toBe(4);
      expect(await t.depth(q)).toBe(0);
      expect(await t.purge(q)).toBe(0);
    });

    it('publishes a batch across queues atomically: when one is delivered, all are visible', async () => {
      const publisher = await open();
      const worker = await open();
      const qa = queue('atomic-a');
      const qb = queue('atomic-b');
      let depthOfB: Promise<number> | undefined;
      const seen = new Promise<void>((resolve) => {
        void worker.consume(
          [qa],
          () => {
            depthOfB ??= worker.depth(qb);
            resolve();
          },
          { prefetch: 1 },
        );
      });
      await publisher.publish([
        { queue: qa, message: testMessage() },
        { queue: qb, message: testMessage() },
      ]);
      await seen;
      expect(await depthOfB).toBe(1);
    });

    it('refuses a batch with an invalid entry and publishes none of it', async () => {
      const t = await open();
      const q = queue('batch');
      await expect(
        t.publish([
          { queue: q, message: testMessage() },
          { queue: '', message: testMessage() },
        ]),
      ).rejects.toBeInstanceOf(CeleriacError);
      expect(await t.depth(q)).toBe(0);
    });

    it('one consumer on several queues rotates fairly between them, FIFO within each', async () => {
      const t = await open();
      const qa = queue('fair-a');
      const qb = queue('fair-b');
      const a = Array.from({ length: 6 }, () => testMessage());
      const b = Array.from({ length: 6 }, () => testMessage());
      await t.publish(outgoing(qa, a));
      await t.publish(outgoing(qb, b));
      const c = await collect(t, [qa, qb], 1);
      await c.autoAck();
      const got = await c.until(12);
      const firstSix = got.slice(0, 6);
      expect(firstSix.filter((d) => d.queue === qa).length).toBeGreaterThanOrEqual(2);
      expect(firstSix.filter((d) => d.queue === qb).length).toBeGreaterThanOrEqual(2);
      expect(ids(got.filter((d) => d.queue === qa))).toEqual(a.map((m) => messageId(m)));
      expect(ids(got.filter((d) => d.queue === qb))).toEqual(b.map((m) => messageId(m)));
    });

    it('competing consumers on two connections get each message exactly once', async () => {
      const t1 = await open();
      const t2 = await open();
      const q = queue('compete');
      const c1 = await collect(t1, [q], 3);
      const c2 = await collect(t2, [q], 3);
      await c1.autoAck();
      await c2.autoAck();
      const sent = Array.from({ length: 30 }, () => testMessage());
      await t1.publish(outgoing(q, sent));
      const deadline = Date.now() + waitMs;
      while (c1.deliveries.length + c2.deliveries.length < sent.length && Date.now() < deadline)
        await sleep(5);
      await sleep(quietMs);
      const got = [...ids(c1.deliveries), ...ids(c2.deliveries)];
      expect(got.sort()).toEqual(sent.map((m) => messageId(m)).sort());
    });

    it('subscriptions: add, list, remove', async () => {
      const t = await open();
      const event = `contract.event.${randomUUID().slice(0, 8)}`;
      const welcome = { task: 'emails.welcome', queue: queue('emails') };
      const trial = { task: 'billing.trial', queue: queue('billing') };
      expect(await t.subscriptions.list(event)).toEqual([]);
      await t.subscriptions.add(event, welcome);
      await t.subscriptions.add(event, trial);
      await t.subscriptions.add(event, { ...welcome });
      const byTask = (a: { task: string }, b: { task: string }) => a.task.localeCompare(b.task);
      expect((await t.subscriptions.list(event)).sort(byTask)).toEqual([trial, welcome]);
      const other = await open();
      expect((await other.subscriptions.list(event)).sort(byTask)).toEqual([trial, welcome]);
      await t.subscriptions.remove(event, welcome);
      expect(await t.subscriptions.list(event)).toEqual([trial]);
      await t.subscriptions.remove(event, trial);
      expect(await t.subscriptions.list(event)).toEqual([]);
    });

    it('settling a delivery twice is an error (ERR_SETTLED), whatever the two settlements', async () => {
      const t = await open();
      const q = queue('settle');
      await t.publish(
        outgoing(
          q,
          [1, 2, 3, 4].map(() => testMessage()),
        ),
      );
      const c = await collect(t, [q], 4);
      const [a, b, d, e] = (await c.until(4)) as [Delivery, Delivery, Delivery, Delivery];
      const settledError = { code: 'ERR_SETTLED' };

      await t.ack(a);
      await expect(t.ack(a)).rejects.toMatchObject(settledError);
      await expect(t.requeue(a)).rejects.toMatchObject(settledError);

      await t.deadLetter(d, 'bad');
      await expect(t.defer(d, Date.now())).rejects.toMatchObject(settledError);

      await t.defer(e, Date.now() + 60_000);
      await expect(t.deadLetter(e, 'again')).rejects.toMatchObject(settledError);

      // A stale delivery must not settle the message's next delivery.
      await t.requeue(b);
      const [, , , , again] = await c.until(5);
      await expect(t.ack(b)).rejects.toMatchObject(settledError);
      await expect(t.ack(b)).rejects.toBeInstanceOf(CeleriacError);
      await t.ack(again as Delivery);
    });

    it('is healthy while open; after close it is unhealthy ("closed") and refuses work', async () => {
      const t = await open();
      expect(t.health()).toMatchObject({ status: 'healthy' });
      await t.close();
      expect(t.health()).toMatchObject({ status: 'unhealthy', reason: 'closed' });
      await t.close();
      const q = queue('closed');
      await expect(t.publish([{ queue: q, message: testMessage() }])).rejects.toBeInstanceOf(ClosedError);
      await expect(t.consume([q], () => {}, { prefetch: 1 })).rejects.toBeInstanceOf(ClosedError);
      await expect(t.depth(q)).rejects.toBeInstanceOf(ClosedError);
      await expect(t.purge(q)).rejects.toBeInstanceOf(ClosedError);
      await expect(t.deadLetters.list(q)).rejects.toBeInstanceOf(ClosedError);
      await expect(t.subscriptions.list('e')).rejects.toBeInstanceOf(ClosedError);
      await expect(t.connect()).rejects.toBeInstanceOf(ClosedError);
    });
  });
}
