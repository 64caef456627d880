import { describe, expect, it } from 'vitest';
import type { Transport } from '../../../src/index.js';
import { ConnectionError } from '../../../src/index.js';
import { Publisher } from '../../../src/publisher/publisher.js';
import { Router } from '../../../src/router/router.js';

function failingTransport(): { transport: Transport; calls: () => number } {
  let calls = 0;
  const transport = {
    kind: 'fake',
    shared: false,
    publish: async () => {
      calls++;
      throw new ConnectionError('broker down');
    },
  } as unknown as Transport;
  return { transport, calls: () => calls };
}

const request = {
  name: 't',
  args: [],
  kwargs: {},
  eta: null,
  expires: null,
  ignoreResult: false,
  shadow: null,
  timelimit: [null, null] as [null, null],
};

describe('publisher circuit breaker', () => {
  it('after 5 failed publishes in a row, fails fast without touching the broker, naming it', async () => {
    const fake = failingTransport();
    const router = new Router({ routes: [], defaultQueue: 'celery', brokers: { default: 'fake://' } });
    const publisher = new Publisher(async () => fake.transport, router, { origin: 'o', replyTo: 'r' });
    for (let i = 0; i < 5; i++) await expect(publisher.publish(request)).rejects.toThrow('broker down');
    expect(fake.calls()).toBe(5);
    const err = (await publisher.publish(request).catch((e: unknown) => e)) as ConnectionError;
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err.message).toMatch(/broker 'default' is failing/);
    expect(fake.calls()).toBe(5); // the open circuit did not call the broker
  });
});
