import type { Channel } from 'rabbitmq-client';

/**
 * Coalesces acks per channel. Every frame is a socket write, and a write costs more than the
 * rest of a no-op task, so the acks of one event-loop turn go out together: the run of settled
 * tags that starts right after the channel's acknowledged floor as ONE `basic.ack(multiple)`, the
 * others (finished out of order, behind a task still running) one by one.
 *
 * Why `multiple` is safe: RabbitMQ numbers a channel's deliveries 1, 2, 3…; `floor` is the highest
 * tag such that every tag up to it is known here as settled (acked, nacked, or being acked now). A
 * multiple ack up to a tag at or below `floor` therefore never covers a delivery that is still
 * running or that this module never saw (another consumer's on the same channel stops the floor
 * there; later tags then get single acks, as before). Tags settled elsewhere (a nack, a relay's
 * ack) are reported with `settled()` so the floor can pass them.
 */
export class AckBatcher {
  readonly #channels = new WeakMap<Channel, ChannelAcks>();
  #pending: Array<{ ch: Channel; tag: number; done: (ok: boolean) => void }> = [];
  #scheduled = false;

  /** Acks `tag` on `ch` with this turn's others; resolves false when the channel was lost first. */
  ack(ch: Channel, tag: number): Promise<boolean> {
    return new Promise((done) => {
      this.#pending.push({ ch, tag, done });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** A tag of `ch` settled by another frame (nack, single ack): lets the floor move past it. */
  settled(ch: Channel, tag: number): void {
    this.#state(ch).mark(tag);
  }

  /** Sends every pending ack now. */
  flush(): void {
    this.#scheduled = false;
    const pending = this.#pending;
    this.#pending = [];
    const byChannel = new Map<Channel, Array<(typeof pending)[number]>>();
    for (const p of pending) {
      const list = byChannel.get(p.ch);
      if (list) list.push(p);
      else byChannel.set(p.ch, [p]);
    }
    for (const [ch, list] of byChannel) {
      if (!ch.active) {
        for (const p of list) p.done(false);
        continue;
      }
      const state = this.#state(ch);
      for (const p of list) state.mark(p.tag);
      // One frame for ours at or below the floor: the highest of them is still outstanding on the
      // server (RabbitMQ refuses a multiple ack whose own tag is not), and every tag below it is
      // settled; the others one by one.
      let upTo = 0;
      for (const p of list) if (p.tag <= state.floor && p.tag > upTo) upTo = p.tag;
      let ok = true;
      try {
        if (upTo > 0) ch.basicAck({ deliveryTag: upTo, multiple: true });
        for (const p of list) if (p.tag > upTo) ch.basicAck({ deliveryTag: p.tag });
      } catch {
        ok = false;
      }
      for (const p of list) p.done(ok);
    }
  }

  #state(ch: Channel): ChannelAcks {
    let s = this.#channels.get(ch);
    if (!s) {
      s = new ChannelAcks();
      this.#channels.set(ch, s);
    }
    return s;
  }
}

/** The settled tags of one channel beyond its floor. */
class ChannelAcks {
  floor = 0;
  readonly #above = new Set<number>();

  mark(tag: number): void {
    if (tag <= this.floor) return;
    this.#above.add(tag);
    while (this.#above.delete(this.floor + 1)) this.floor += 1;
    // A tag this module never sees (another consumer's) holds the floor back: keep memory bounded
    // by letting go of what is above it; those tags were acked one by one already.
    if (this.#above.size > MAX_ABOVE) this.#above.clear();
  }
}

const MAX_ABOVE = 8192;
