import type { HostCalls, HostMethod, HostStream, HostStreams, ToChild, ToParent } from './protocol.js';
import { fromWireError } from './protocol.js';

/**
 * The thread/child side of the link to the main worker: calls (request, reply) and streams
 * (subscribe, events, unsubscribe), correlated by a call id.
 */
export class HostClient {
  readonly #send: (message: ToParent) => void;
  #next = 1;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>();
  readonly #streams = new Map<number, (value: unknown) => void>();

  constructor(send: (message: ToParent) => void) {
    this.#send = send;
  }

  /** Calls a method on the main worker. With `signal`, an abort cancels the call there too. */
  call<K extends HostMethod>(
    method: K,
    args: Parameters<HostCalls[K]>,
    signal?: AbortSignal,
  ): ReturnType<HostCalls[K]> {
    signal?.throwIfAborted();
    const cid = this.#next++;
    return new Promise<unknown>((resolve, reject) => {
      const onAbort = () => {
        this.#pending.delete(cid);
        this.#send({ t: 'cancel', cid });
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(cid, {
        resolve: (value) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(value);
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      });
      this.#send({ t: 'call', cid, method, args });
    }) as ReturnType<HostCalls[K]>;
  }

  /** Subscribes on the main worker; resolves with the unsubscribe function once subscribed. */
  async subscribe<K extends HostStream>(
    method: K,
    args: HostStreams[K][0],
    onEvent: (value: HostStreams[K][1]) => void,
  ): Promise<() => Promise<void>> {
    const cid = this.#next++;
    this.#streams.set(cid, onEvent as (value: unknown) => void);
    const subscribed = new Promise<unknown>((resolve, reject) => {
      this.#pending.set(cid, { resolve, reject });
    });
    this.#send({ t: 'subscribe', cid, method, args });
    try {
      await subscribed;
    } catch (err) {
      this.#streams.delete(cid);
      throw err;
    }
    return async () => {
      if (this.#streams.delete(cid)) this.#send({ t: 'unsubscribe', cid });
    };
  }

  /** Feeds a message from the main worker; returns false when it is not for this client. */
  receive(message: ToChild): boolean {
    if (message.t === 'reply') {
      const pending = this.#pending.get(message.cid);
      this.#pending.delete(message.cid);
      if (message.ok) pending?.resolve(message.value);
      else pending?.reject(fromWireError(message.error));
      return true;
    }
    if (message.t === 'event') {
      this.#streams.get(message.cid)?.(message.value);
      return true;
    }
    return false;
  }
}
