import { afterAll, beforeAll } from 'vitest';
import { createTransport } from '../../../src/brokers/amqp/index.js';
import { transportContract } from '../../contract/transport.contract.js';
import { amqpUrl, freshVhost } from './helpers.js';

let vhost = '';
let drop: () => Promise<void> = async () => {};

beforeAll(async () => {
  ({ vhost, drop } = await freshVhost('contract')); // fails the file at once when RabbitMQ is not there
});
afterAll(async () => {
  await drop();
});

// The contract's queues are Celeriac-only: opt them into priorities (Celery-named queues get none).
transportContract('amqp', async () => ({
  transport: createTransport(new URL(amqpUrl(vhost)), {
    options: { queues: { 'contract.*': { maxPriority: 9 } } },
  }),
}));
