import { setTimeout as sleep } from 'node:timers/promises';
import type { Channel, Connection, ReturnedMessage } from 'rabbitmq-client';
import { ClosedError, ConnectionError } from '../../errors.js';
import type { OutgoingEnvelope } from './frames.js';
import { ChannelSlot } from './topology.js';

/** One message to publish on the confirm channel. */
export interface Publication {
  envelope: OutgoingEnvelope;
  body: Buffer;
}

/**
 * Publishes with publisher confirms, a batch at a time: every message of a `send()` is written to
 * the channel at once and the call resolves when the broker has confirmed them all (RabbitMQ acks
 * them together). While the connection is down, sends wait for it (up to `publishTimeoutMs`), and
 * at most `maxBacklog` messages wait in all; beyond that `send()` rejects at once with
 * ConnectionError. A publish counts from its start, declarations included (`admit`): a publish to a
 * queue not declared yet waits for the connection in its declaration, and is bounded all the same.
 * Messages not confirmed when a channel or connection is lost are sent again on the next one
 * (at-least-once: one that the broker had received but not yet confirmed is then there twice).
 *
 * Messages are published `mandatory`: one that RabbitMQ cannot route (its queue was deleted under
 * us) comes back, and `onReturn` re-declares the queue and sends it again.
 */
export class ConfirmPublisher {
  private readonly slot: ChannelSlot;
  private waiting = 0;
  private closed = false;

  constructor(
    connection: () => Connection,
    private readonly limits: { maxBacklog: number; publishTimeoutMs: number; label: string },
    private readonly onReturn: (msg: ReturnedMessage) => void,
  ) {
    this.slot = new ChannelSlot(connection, async (ch: Channel) => {
      await ch.confirmSelect();
      ch.on('basic.return', (msg: ReturnedMessage) => this.onReturn(msg));
    });
  }

  /** Messages accepted (by `admit` or `send`) and not confirmed yet. */
  get backlog(): number {
    return this.waiting;
  }

  /**
   * Runs `work` (declarations, then `deliver`) with `count` messages counted in the backlog: while
   * RabbitMQ is unreachable (`connected` false) and they do not fit in `maxBacklog`, rejects at once
   * with ConnectionError naming the limit, before anything is declared or sent. `work` gets the
   * deadline of the whole publish.
   */
  async admit<T>(count: number, connected: boolean, work: (deadline: number) => Promise<T>): Promise<T> {
    if (this.closed) throw new ClosedError('amqp publisher');
    if (!connected && this.waiting + count > this.limits.maxBacklog) {
      throw new ConnectionError(
        `RabbitMQ at ${this.limits.label} is unreachable and the publish backlog is full ` +
          `(${this.waiting} of ${this.limits.maxBacklog} messages waiting, ${count} more refused; brokerOptions.maxBacklog or ?max_backlog=)`,
      );
    }
    this.waiting += count;
    try {
      return await work(Date.now() + this.limits.publishTimeoutMs);
    } finally {
      this.waiting -= count;
    }
  }

  /** `deliver` counted in the backlog (see `admit`). */
  async send(items: readonly Publication[], connected: boolean): Promise<void> {
    if (items.length === 0) return;
    await this.admit(items.length, connected, (deadline) => this.deliver(items, deadline));
  }

  /** Publishes and waits for the confirms, re-sending what a lost channel did not confirm, until `deadline`. */
  async deliver(items: readonly Publication[], deadline: number): Promise<void> {
    let pending = [...items];
    let lastError: unknown;
    while (pending.length > 0) {
      if (this.closed) throw new ClosedError('amqp publisher');
      if (Date.now() > deadline) {
        throw new ConnectionError(
          `publish not confirmed within ${this.limits.publishTimeoutMs} ms (${pending.length} of ${items.length} messages): ${String(lastError)}`,
          { cause: lastError },
        );
      }
      let ch: Channel;
      try {
        ch = await this.slot.get();
      } catch (err) {
        lastError = err;
        await sleep(100);
        continue;
      }
      const outcomes = await Promise.allSettled(
        pending.map((p) => ch.basicPublish({ ...p.envelope, mandatory: true }, p.body)),
      );
      const failed: Publication[] = [];
      outcomes.forEach((o, i) => {
        if (o.status === 'rejected') {
          lastError = o.reason;
          failed.push(pending[i] as Publication);
        }
      });
      pending = failed;
      if (pending.length > 0) await sleep(50);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.slot.close();
  }
}
