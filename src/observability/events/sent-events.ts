import type { OutgoingMessage, Transport } from '../../brokers/transport.js';
import type { Logger } from '../../logging.js';
import { originName } from '../../messages/ids.js';
import { EventDispatcher } from './dispatcher.js';
import type { MonitoringEvents } from './worker-events.js';

/** What `sendTaskSentEvents` needs of an app (a Celeriac app has it). */
export interface PublishingApp {
  onPublished(listener: (messages: readonly OutgoingMessage[]) => void): () => void;
  transport(): Promise<Transport>;
  readonly log: Logger;
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

/**
 * Sends Celery's `task-sent` event for every task message the app publishes, as Celery's
 * `task_send_sent_event = True` (opt-in: it costs one PUBLISH per message). The sender's hostname is
 * `gen<pid>@<host>`, as Celery's.
 *
 * @example
 * const sent = sendTaskSentEvents(app);
 * await add.delay(2, 3); // task-sent on celeryev
 * await sent.close();
 */
export function sendTaskSentEvents(app: PublishingApp): MonitoringEvents {
  const transport = app.transport().then((t) => {
    if (!t.fanout) throw new Error(`the ${t.kind} broker has no fan-out: monitoring events cannot be sent`);
    return { fanout: t.fanout, priority: t.defaultPriority ?? 0 };
  });
  transport.catch((err: unknown) => app.log.warn({ err }, 'task-sent events are off'));
  const dispatcher = new EventDispatcher({
    fanout: transport.then((t) => t.fanout),
    priority: transport.then((t) => t.priority),
    hostname: originName(),
    batch: false,
    log: app.log,
  });
  const off = app.onPublished((messages) => {
    for (const { queue, message } of messages) {
      const h = message.headers;
      const id = str(h.id);
      const name = str(h.task);
      if (!id || !name) continue;
      dispatcher.send('task-sent', {
        uuid: id,
        root_id: str(h.root_id),
        parent_id: str(h.parent_id),
        name,
        args: str(h.argsrepr) ?? '()',
        kwargs: str(h.kwargsrepr) ?? '{}',
        retries: typeof h.retries === 'number' ? h.retries : 0,
        eta: str(h.eta),
        expires: str(h.expires),
        queue,
        exchange: '',
        routing_key: queue,
      });
    }
  });
  return {
    async close() {
      off();
      await dispatcher.close();
    },
  };
}
