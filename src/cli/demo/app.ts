import { z } from 'zod';
import { Celeriac } from '../../index.js';

/** The error the demo's failing task throws: its name is the `exc_type` stored with the failure. */
export class OutOfStockError extends Error {
  override readonly name = 'OutOfStockError';
}

const orderSchema = z.object({ orderId: z.string(), total: z.number() });
type Order = z.infer<typeof orderSchema> & Record<string, unknown>;

/**
 * The demo's sample app, on the in-process memory broker and result store: a plain task, a task
 * that fails twice and then succeeds, one that always fails, one sent with a countdown, and an event
 * with three subscribers. A factory rather than a module-level app, so each run gets its own broker.
 *
 * @example
 * const demo = createDemoApp('demo');
 * await demo.add.delay(2, 3);
 */
export function createDemoApp(name: string, logger = 'silent') {
  const app = new Celeriac({ broker: `memory://${name}`, results: `memory://${name}`, logger });

  const add = app.task('demo.add', (a: number, b: number) => a + b);

  /** Fails on its first two runs, then succeeds: two retries each. */
  const flaky = app.task(
    'demo.flaky',
    (ctx, n: number) => {
      if (ctx.retries < 2) throw ctx.retry({ countdown: '20ms' });
      return n;
    },
    { bind: true, retry: { max: 3, backoff: 'fixed', base: '20ms', jitter: false } },
  );

  const fail = app.task('demo.fail', (order: number): number => {
    throw new OutOfStockError(`order ${order}: item out of stock`);
  });

  const reminder = app.task('demo.reminder', (text: string) => `reminded: ${text}`);

  const orderPlaced = app.event('demo.order.placed', orderSchema);
  const confirm = app.task('demo.email.confirm', (order: Order) => `confirmation sent for ${order.orderId}`);
  const invoice = app.task('demo.invoice.create', (order: Order) => ({
    invoice: `INV-${order.orderId}`,
    total: order.total,
  }));
  const stock = app.task('demo.stock.reserve', (order: Order) => ({ reserved: order.orderId }));
  orderPlaced.subscribe(confirm).subscribe(invoice).subscribe(stock);

  return { app, add, flaky, fail, reminder, orderPlaced, subscribers: [confirm, invoice, stock] };
}

export type DemoApp = ReturnType<typeof createDemoApp>;
