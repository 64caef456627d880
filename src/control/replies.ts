import type { Fanout } from '../brokers/transport.js';
import type { ReceivedReply } from './protocol.js';
import { parseReply, REPLY_EXCHANGE } from './protocol.js';

type Listener = (reply: ReceivedReply) => void;

/**
 * The client's reply queue (kombu's `<oid>.reply.celery.pidbox`, bound to `reply.celery.pidbox`
 * with routing key = oid), shared by every broadcast of one client: opened before the first request
 * is published, routed to collectors by ticket, and closed when the last collector is done (kombu
 * deletes it after each collection too). Opening waits for a close in progress, so the binding
 * of a new subscription is never removed by the end of an old one.
 */
export class ReplyQueue {
  readonly #fanout: () => Promise<Fanout>;
  readonly #oid: string;
  readonly #listeners = new Map<string, Listener>();
  readonly #onMalformed: (err: Error) => void;
  #subscription: Promise<() => Promise<void>> | null = null;
  #closing: Promise<void> = Promise.resolve();

  constructor(fanout: () => Promise<Fanout>, oid: string, onMalformed: (err: Error) => void) {
    this.#fanout = fanout;
    this.#oid = oid;
    this.#onMalformed = onMalformed;
  }

  get oid(): string {
    return this.#oid;
  }

  /** Routes replies carrying `ticket` to `listener` until the returned release is called. */
  async listen(ticket: string, listener: Listener): Promise<() => Promise<void>> {
    this.#listeners.set(ticket, listener);
    try {
      if (!this.#subscription) {
        const closing = this.#closing;
        this.#subscription = (async () => {
          await closing;
          const fanout = await this.#fanout();
          return fanout.subscribe(REPLY_EXCHANGE, this.#oid, (message) => {
            let reply: ReceivedReply;
            try {
              reply = parseReply(message);
            } catch (err) {
              this.#onMalformed(err as Error);
              return;
            }
            if (reply.ticket !== null) this.#listeners.get(reply.ticket)?.(reply);
          });
        })();
        this.#subscription.catch(() => {
          this.#subscription = null;
        });
      }
      await this.#subscription;
    } catch (err) {
      this.#listeners.delete(ticket);
      throw err;
    }
    return async () => {
      this.#listeners.delete(ticket);
      if (this.#listeners.size > 0 || !this.#subscription) return;
      const subscription = this.#subscription;
      this.#subscription = null;
      this.#closing = subscription
        .then((unsubscribe) => unsubscribe())
        .catch(() => {
          // the transport may be closed already: nothing left to remove
        });
      await this.#closing;
    };
  }
}
