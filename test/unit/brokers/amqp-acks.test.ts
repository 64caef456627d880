import type { Channel } from 'rabbitmq-client';
import { describe, expect, it } from 'vitest';
import { AckBatcher } from '../../../src/brokers/amqp/acks.js';

/** A channel that records the ack frames it is asked to send. */
function fakeChannel(): { ch: Channel; frames: Array<{ deliveryTag: number; multiple: boolean }> } {
  const frames: Array<{ deliveryTag: number; multiple: boolean }> = [];
  const ch = {
    active: true,
    basicAck(p: { deliveryTag: number; multiple?: boolean }) {
      frames.push({ deliveryTag: p.deliveryTag, multiple: p.multiple === true });
    },
  } as unknown as Channel;
  return { ch, frames };
}

const turn = () => new Promise((r) => setImmediate(r));

describe('amqp AckBatcher', () => {
  it('acks a run of tags from the floor as one multiple ack', async () => {
    const { ch, frames } = fakeChannel();
    const acks = new AckBatcher();
    const done = [1, 2, 3, 4, 5].map((t) => acks.ack(ch, t));
    expect(await Promise.all(done)).toEqual([true, true, true, true, true]);
    expect(frames).toEqual([{ deliveryTag: 5, multiple: true }]);
  });

  it('never covers a tag still running: out-of-order ones go singly, the head later', async () => {
    const { ch, frames } = fakeChannel();
    const acks = new AckBatcher();
    // Tag 1 still runs; 2 and 3 finish first.
    await Promise.all([acks.ack(ch, 2), acks.ack(ch, 3)]);
    expect(frames).toEqual([
      { deliveryTag: 2, multiple: false },
      { deliveryTag: 3, multiple: false },
    ]);
    frames.length = 0;
    // 1 finishes with 4: the floor passes 1..4; one multiple ack at 4 (1 and 4 are outstanding, 2
    // and 3 were acked already and are not).
    await Promise.all([acks.ack(ch, 1), acks.ack(ch, 4)]);
    expect(frames).toEqual([{ deliveryTag: 4, multiple: true }]);
  });

  it('lets the floor pass tags settled elsewhere (nack, relay), but a multiple ack always ends on one of its own', async () => {
    const { ch, frames } = fakeChannel();
    const acks = new AckBatcher();
    acks.settled(ch, 1); // nacked back by a cancelled consumer
    await acks.ack(ch, 2);
    expect(frames).toEqual([{ deliveryTag: 2, multiple: true }]);
    frames.length = 0;
    await acks.ack(ch, 3);
    acks.settled(ch, 4);
    await acks.ack(ch, 6); // 5 unknown (another consumer's): 6 goes singly
    expect(frames).toEqual([
      { deliveryTag: 3, multiple: true },
      { deliveryTag: 6, multiple: false },
    ]);
  });

  it('reports false for a channel lost before the turn ended, and batches channels apart', async () => {
    const a = fakeChannel();
    const b = fakeChannel();
    const acks = new AckBatcher();
    const pa = acks.ack(a.ch, 1);
    const pb = acks.ack(b.ch, 1);
    (a.ch as unknown as { active: boolean }).active = false;
    expect(await pa).toBe(false);
    expect(await pb).toBe(true);
    expect(a.frames).toEqual([]);
    expect(b.frames).toEqual([{ deliveryTag: 1, multiple: true }]);
    await turn();
  });
});
