import { afterAll, beforeAll } from 'vitest';
import { createTransport } from '../../../src/brokers/redis/index.js';
import { createResultSink } from '../../../src/results/redis/index.js';
import { sinkContract } from '../../contract/sink.contract.js';
import { transportContract } from '../../contract/transport.contract.js';
import { deletePrefix, inspector, redisUrl, uniquePrefix } from './helpers.js';

const prefix = uniquePrefix('contract');
const admin = inspector();

beforeAll(async () => {
  await admin.connect(); // fails the file at once when Redis is not there
});
afterAll(async () => {
  await deletePrefix(admin, prefix);
  await admin.quit();
});

transportContract('redis', async () => ({
  transport: createTransport(new URL(redisUrl({ prefix })), { options: { lease: '2s', pollInterval: 200 } }),
}));

sinkContract('redis', async () => ({ sink: createResultSink(new URL(redisUrl({ prefix })), {}) }));
