import type { AppCore } from './core.js';
import { ConfigError, PayloadError } from './errors.js';
import type { AsyncResult } from './result.js';
import type { StandardSchemaV1 } from './schema.js';
import { validate } from './schema.js';
import type { Task } from './task.js';

/** A subscriber known to the publishing app: a task name and the queue its copies go to. */
export interface EventSubscriber {
  task: string;
  queue: string | undefined;
}

/** What `publish()` returns: the event id and one result handle per subscriber reached. */
export interface PublishedEvent {
  id: string;
  /** By subscriber task name. Each subscriber's run has its own task id (UUID v5 of event id + task name). */
  results: Map<string, AsyncResult<unknown>>;
}

/** @internal what the app provides to events. */
export interface EventCore extends AppCore {
  publishEvent(
    name: string,
    payload: Record<string, unknown>,
    subscribers: readonly EventSubscriber[],
  ): Promise<PublishedEvent>;
}

/**
 * An Event (the CEP's): published once, delivered to every subscribed task, each as its own message
 * with its own id and retries. On the wire the payload's fields are the message's kwargs, so a Python
 * task can subscribe by name; a TypeScript subscriber receives the payload object as its one argument.
 *
 * @example
 * const userRegistered = app.event('user.registered', z.object({ id: z.string(), email: z.email() }));
 * userRegistered.subscribe(sendWelcomeEmail);
 * userRegistered.subscribe('crm.tasks.create_contact'); // a Python task, by name
 * await userRegistered.publish({ id: '42', email: 'ada@example.com' });
 */
export class CeleriacEvent<P extends Record<string, unknown> = Record<string, unknown>> {
  readonly name: string;
  readonly schema: StandardSchemaV1 | undefined;
  readonly #core: EventCore;
  readonly #subscribers = new Map<string, EventSubscriber>();

  /** @internal use `app.event()`. */
  constructor(core: EventCore, name: string, schema?: StandardSchemaV1) {
    this.#core = core;
    this.name = name;
    this.schema = schema;
  }

  /**
   * Subscribes a task (or a task name, for a task defined elsewhere, Python included). Idempotent.
   * `queue` overrides the task's own queue for this event's copies.
   */
  subscribe(task: Task<[P], unknown> | Task<[], unknown> | string, options: { queue?: string } = {}): this {
    const name = typeof task === 'string' ? task : task.name;
    if (!name) throw new ConfigError('subscribe', 'expected a task or a task name');
    const queue = options.queue ?? (typeof task === 'string' ? undefined : task.options.queue);
    this.#subscribers.set(name, { task: name, queue });
    return this;
  }

  /** Removes a subscriber known to this app. */
  unsubscribe(task: Task<never[], unknown> | string): this {
    this.#subscribers.delete(typeof task === 'string' ? task : task.name);
    return this;
  }

  /** The subscribers this app knows of (not those registered in the broker by other services). */
  get subscribers(): readonly EventSubscriber[] {
    return [...this.#subscribers.values()];
  }

  /**
   * Publishes the event to every subscriber at once (all or none). A payload that fails the schema,
   * or is not a plain object, is refused here with a PayloadError.
   */
  async publish(payload: P): Promise<PublishedEvent> {
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
      throw new PayloadError(
        `event ${this.name}`,
        'payload must be a plain object (its fields travel as kwargs)',
      );
    }
    const value = this.schema ? await validate(this.schema, payload, `event ${this.name}`) : payload;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new PayloadError(`event ${this.name}`, 'the schema must produce a plain object');
    }
    return this.#core.publishEvent(this.name, value as Record<string, unknown>, this.subscribers);
  }
}

/** The payload type of an event schema. */
export type EventPayload<S> = S extends StandardSchemaV1
  ? StandardSchemaV1.InferOutput<S> & Record<string, unknown>
  : Record<string, unknown>;
