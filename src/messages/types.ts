/**
 * The message model: what Celeriac's components pass around, independent of any broker.
 *
 * A Command (a task to run) is a Celery protocol v2 task message: headers, properties, and a body
 * `[args, kwargs, embed]`. An Event reaches the wire as one Command per subscriber (header
 * `celeriac_event` names the event). A Document is a result meta (see `results/meta.ts`).
 */

/** A JSON value as it travels on the wire. Integers beyond 2^53 decode as `bigint` (see messages/json.ts). */
export type JsonValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/** A serialized canvas signature, as Celery writes it in `embed` (`{task, args, kwargs, options, subtask_type, immutable}`). */
export interface SignatureJson {
  task: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  options: Record<string, unknown>;
  subtask_type: string | null;
  immutable: boolean;
  [extra: string]: unknown;
}

/** `body[2]` of a task message. Missing keys are treated as null (the Python worker accepts `{}`). */
export interface Embed {
  callbacks: SignatureJson[] | null;
  errbacks: SignatureJson[] | null;
  chain: SignatureJson[] | null;
  chord: SignatureJson | null;
  [extra: string]: unknown;
}

/**
 * Protocol v2 headers by their wire names, in the order Celery writes them. Custom headers
 * (`applyAsync({ headers })`) follow `ignore_result` at top level, as in Celery.
 */
export interface TaskHeaders {
  lang: string;
  task: string;
  id: string;
  shadow: string | null;
  eta: string | null;
  expires: string | null;
  group: string | null;
  group_index: number | null;
  retries: number;
  timelimit: [number | null, number | null];
  root_id: string;
  parent_id: string | null;
  argsrepr: string;
  kwargsrepr: string;
  origin: string;
  ignore_result: boolean;
  [custom: string]: unknown;
}

/** Header naming the event a message was published for (Celeriac's; Python ignores unknown headers). */
export const EVENT_HEADER = 'celeriac_event';
/** Header carrying the id of the event publish that produced a subscriber's message. */
export const EVENT_ID_HEADER = 'celeriac_event_id';

/**
 * A message as every transport carries it, before broker-specific framing (kombu's Redis envelope,
 * AMQP properties…). `priority` is the API's: 0–9 with 9 the most urgent; each transport translates
 * it to its broker's Celery wire meaning (reversed buckets on Redis, as-is on AMQP).
 */
export interface WireMessage {
  /** Application headers, in wire order. */
  headers: Record<string, unknown>;
  /**
   * Message properties other than priority: `correlation_id`, `reply_to`, `delivery_mode`,
   * `expiration` (ms string, optional), and any broker-specific extras a message arrived with.
   */
  properties: Record<string, unknown>;
  /** API priority, 0–9, 9 most urgent. */
  priority: number;
  contentType: string;
  contentEncoding: string;
  /** The serialized body (for JSON: the UTF-8 text of `[args, kwargs, embed]`). */
  body: string;
}

/** A decoded Command: the task message the worker runs. */
export interface TaskMessage {
  headers: TaskHeaders;
  /** correlation_id, reply_to, delivery_mode, expiration… (see WireMessage.properties). */
  properties: Record<string, unknown>;
  priority: number;
  args: unknown[];
  kwargs: Record<string, unknown>;
  embed: Embed;
}
