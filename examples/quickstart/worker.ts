/**
 * A worker in your own process instead of `celeriac worker`. Run: npx tsx examples/quickstart/worker.ts
 */
import { app } from './app.js';

const worker = app.worker({ queues: ['celery'], concurrency: 50 });
await worker.start();
process.once('SIGTERM', () => void worker.stop().then(() => app.close()));
process.once('SIGINT', () => void worker.stop().then(() => app.close()));
