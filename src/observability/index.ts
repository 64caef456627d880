/**
 * Observability: Celery-compatible monitoring events, Prometheus metrics, OpenTelemetry trace
 * context. The worker's typed event map (worker/events.ts) is the source of all of them.
 */
import type { Transport } from '../brokers/transport.js';
import type { EventReceiverOptions } from './events/receiver.js';
import { EventReceiver } from './events/receiver.js';
import type { CeleryEvent } from './events/types.js';

export { LamportClock } from './events/clock.js';
export { decodeEvents, encodeEvents } from './events/codec.js';
export { EventDispatcher } from './events/dispatcher.js';
export { EventReceiver } from './events/receiver.js';
export type { PublishingApp } from './events/sent-events.js';
export { sendTaskSentEvents } from './events/sent-events.js';
export type { MonitoredState, TaskView, WorkerView } from './events/state.js';
export { ClusterState } from './events/state.js';
export type { CeleryEvent, CeleryEventFields, CeleryEventType, WorkerFields } from './events/types.js';
export { isEvent } from './events/types.js';
export type { MonitoringEvents } from './events/worker-events.js';
export { sendWorkerEvents } from './events/worker-events.js';

/**
 * Receives the monitoring events of every worker on the app's broker (Celeriac's and Python
 * Celery's started with `-E`). Resolves once listening; `close()` the receiver when done.
 *
 * @example
 * const receiver = await receiveEvents(app, (e) => console.log(e.type, e.uuid));
 */
export async function receiveEvents(
  app: { transport(): Promise<Transport> },
  handler: (event: CeleryEvent) => void,
  options: EventReceiverOptions = {},
): Promise<EventReceiver> {
  const transport = await app.transport();
  if (!transport.fanout)
    throw new Error(`the ${transport.kind} broker has no fan-out: monitoring events cannot be received`);
  return EventReceiver.start(transport.fanout, handler, options);
}
