import { randomUUID } from 'node:crypto';
import type { WireMessage } from '../../src/messages/types.js';

export interface TestMessageOptions {
  task?: string;
  id?: string;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  /** API priority 0–9 (9 most urgent). */
  priority?: number;
  /** Extra custom headers, after Celery's. */
  headers?: Record<string, unknown>;
}

/**
 * Builds a valid Celery protocol v2 WireMessage for tests, without the codec: JSON body
 * `[args, kwargs, embed]`, headers in Celery's wire order.
 *
 * @example
 * const m = testMessage({ task: 'tasks.add', args: [2, 3], priority: 9 });
 * messageId(m); // m.headers.id
 */
export function testMessage(options: TestMessageOptions = {}): WireMessage {
  const id = options.id ?? randomUUID();
  const args = options.args ?? [];
  const kwargs = options.kwargs ?? {};
  return {
    headers: {
      lang: 'py',
      task: options.task ?? 'tests.noop',
      id,
      shadow: null,
      eta: null,
      expires: null,
      group: null,
      group_index: null,
      retries: 0,
      timelimit: [null, null],
      root_id: id,
      parent_id: null,
      argsrepr: JSON.stringify(args),
      kwargsrepr: JSON.stringify(kwargs),
      origin: `test@${process.pid}`,
      ignore_result: false,
      ...options.headers,
    },
    properties: { correlation_id: id, reply_to: randomUUID(), delivery_mode: 2 },
    priority: options.priority ?? 0,
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    body: JSON.stringify([args, kwargs, { callbacks: null, errbacks: null, chain: null, chord: null }]),
  };
}

/** The task id a message carries (`headers.id`). */
export function messageId(message: WireMessage | null | undefined): string {
  const id = message?.headers['id'];
  if (typeof id !== 'string') throw new Error(`message has no string headers.id: ${JSON.stringify(message)}`);
  return id;
}
