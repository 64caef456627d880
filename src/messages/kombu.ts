/**
 * kombu's Redis envelope: the JSON text that kombu LPUSHes to a queue list (and PUBLISHes for
 * fanout), byte for byte:
 *
 * ```json
 * {"body": "<base64>", "content-encoding": "utf-8", "content-type": "application/json",
 *  "headers": {...}, "properties": {"correlation_id": ..., "reply_to": ..., "delivery_mode": 2,
 *  ["expiration": "300000",] "delivery_info": {"exchange": "", "routing_key": "celery"},
 *  "priority": 0, "body_encoding": "base64", "delivery_tag": "<uuid4>"}}
 * ```
 *
 * Properties other than delivery_info/priority/body_encoding/delivery_tag (Celery's retries add
 * `replaced_task_nesting` and `origin`) keep their place. Priority on the Redis wire is kombu's:
 * 0 is served first. The API's priority (9 most urgent) is `9 - wire`.
 *
 * A missing `delivery_tag` kills a Celery 5.2.6 worker; `fromKombuEnvelope` reports it as
 * `deliveryTag: null` instead, and the transport decides what to do (the message itself is sound).
 */
import { MalformedMessageError } from '../errors.js';
import { dumps, loads } from './json.js';
import type { WireMessage } from './types.js';

/** kombu's separator in priority queue names and binding members. */
export const KOMBU_SEP = '\x06\x16';
export const PRIORITY_STEPS = [0, 3, 6, 9] as const;

/** Properties the envelope writes itself, in this order, after the message's own properties. */
const ENVELOPE_PROPERTIES: ReadonlySet<string> = new Set([
  'delivery_info',
  'priority',
  'body_encoding',
  'delivery_tag',
]);

export interface KombuAddress {
  /** `""` for task messages (Celery publishes to the default exchange). */
  exchange: string;
  /** The queue name for task messages. */
  routingKey: string;
  /** A uuid4 string, made by the publisher. */
  deliveryTag: string;
  /** Set by kombu when it restores an unacked message (also a `redelivered` header). */
  redelivered?: boolean;
}

export interface KombuDelivery {
  wire: WireMessage;
  /** null when the envelope had none (a Celery worker would crash on it). */
  deliveryTag: string | null;
  exchange: string;
  routingKey: string;
  redelivered: boolean;
}

function clamp(p: number): number {
  if (!Number.isFinite(p)) return 0;
  return Math.min(9, Math.max(0, Math.round(p)));
}

/**
 * API priority (0–9, 9 most urgent) → kombu Redis wire priority (0 served first), and back: the
 * mapping is its own inverse.
 *
 * @example
 * toKombuPriority(9) // 0
 */
export function toKombuPriority(priority: number): number {
  return 9 - clamp(priority);
}

/** kombu Redis wire priority → API priority. */
export function fromKombuPriority(wirePriority: number): number {
  return 9 - clamp(wirePriority);
}

/**
 * The Redis list a message of this API priority goes to: `queue` for wire step 0, else
 * `queue\x06\x16<step>` with step the largest of 0, 3, 6, 9 not above the wire priority.
 *
 * @example
 * kombuPriorityQueue('celery', 9) // 'celery'
 * kombuPriorityQueue('celery', 0) // 'celery\x06\x169'
 */
export function kombuPriorityQueue(queue: string, apiPriority: number): string {
  const wire = toKombuPriority(apiPriority);
  const step = wire >= 9 ? 9 : wire >= 6 ? 6 : wire >= 3 ? 3 : 0;
  return step === 0 ? queue : `${queue}${KOMBU_SEP}${step}`;
}

/** Every list of a queue, in the order kombu's consumer BRPOPs them (wire priority 0 first). */
export function kombuQueueKeys(queue: string): string[] {
  return PRIORITY_STEPS.map((step) => (step === 0 ? queue : `${queue}${KOMBU_SEP}${step}`));
}

/**
 * The envelope text kombu would write for this message (JSON as Python's `json.dumps`).
 *
 * @example
 * redis.lpush(kombuPriorityQueue('celery', msg.priority), toKombuEnvelope(msg, { exchange: '', routingKey: 'celery', deliveryTag: uuid4() }))
 */
export function toKombuEnvelope(wire: WireMessage, address: KombuAddress): string {
  const properties: Record<string, unknown> = {};
  for (const key in wire.properties) {
    if (Object.hasOwn(wire.properties, key) && !ENVELOPE_PROPERTIES.has(key))
      properties[key] = wire.properties[key];
  }
  properties.delivery_info = address.redelivered
    ? { exchange: address.exchange, routing_key: address.routingKey, redelivered: true }
    : { exchange: address.exchange, routing_key: address.routingKey };
  properties.priority = toKombuPriority(wire.priority);
  properties.body_encoding = 'base64';
  properties.delivery_tag = address.deliveryTag;
  return dumps(
    {
      body: Buffer.from(wire.body, 'utf8').toString('base64'),
      'content-encoding': wire.contentEncoding,
      'content-type': wire.contentType,
      headers: wire.headers,
      properties,
    },
    { allowBigInt: true },
  );
}

const BODY_FIRST = '{"body": "';

/**
 * `loads` for an envelope as kombu and Celeriac write it (`{"body": "<base64>", …}`): the body is a
 * string, so only the text after it is scanned for integers beyond 2^53; scanning the body too
 * costs as much as parsing it. Any other layout is scanned whole.
 */
function loadsEnvelope(raw: string): unknown {
  const end = raw.startsWith(BODY_FIRST) ? raw.indexOf('"', BODY_FIRST.length) : -1;
  return loads(raw, Math.max(0, end));
}

// A flat character class (no nested groups): a group repeated per 4 characters overflows the regex
// engine's stack on bodies of a few MB.
const BASE64_CHARS = /^[A-Za-z0-9+/]*={0,2}$/;
const isBase64 = (s: string): boolean => s.length % 4 === 0 && BASE64_CHARS.test(s);
const UTF8 = new TextDecoder('utf-8', { fatal: true });

function fail(reason: string, cause?: unknown): never {
  throw new MalformedMessageError(`kombu envelope: ${reason}`, cause === undefined ? undefined : { cause });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parses a kombu Redis envelope. Accepts a base64 body (`body_encoding: "base64"`) and a plain
 * JSON-string body without `body_encoding`, as the Celery worker does. Throws MalformedMessageError
 * for text that is not a JSON object, a missing or non-string body, bad base64 or UTF-8, an
 * unknown body_encoding, or headers/properties that are not objects.
 *
 * @example
 * const { wire, deliveryTag } = fromKombuEnvelope(await redis.brpop('celery', 1));
 */
export function fromKombuEnvelope(raw: string): KombuDelivery {
  let env: unknown;
  try {
    env = loadsEnvelope(raw);
  } catch (err) {
    fail(`not JSON: ${(err as Error).message}`, err);
  }
  if (!isRecord(env)) fail('not a JSON object');
  const props = env.properties ?? {};
  if (!isRecord(props)) fail("'properties' must be an object");
  const headers = env.headers ?? {};
  if (!isRecord(headers)) fail("'headers' must be an object");
  if (env.body === undefined) fail("missing 'body'");
  if (typeof env.body !== 'string') fail("'body' must be a string");

  let body = env.body;
  const encoding = props.body_encoding;
  if (encoding === 'base64') {
    if (!isBase64(body)) fail("'body' is not valid base64");
    try {
      body = UTF8.decode(Buffer.from(body, 'base64'));
    } catch (err) {
      fail("'body' is not valid UTF-8 once base64-decoded", err);
    }
  } else if (encoding !== undefined && encoding !== null) {
    fail(`unsupported body_encoding ${JSON.stringify(encoding)} (expected "base64" or none)`);
  }

  const tag = props.delivery_tag;
  let deliveryTag: string | null = null;
  if (typeof tag === 'string') deliveryTag = tag;
  else if (typeof tag === 'number') deliveryTag = String(tag);
  else if (tag !== undefined && tag !== null) fail(`'delivery_tag' must be a string, got ${typeof tag}`);

  const info = isRecord(props.delivery_info) ? props.delivery_info : {};
  const properties: Record<string, unknown> = {};
  for (const key in props) {
    if (Object.hasOwn(props, key) && !ENVELOPE_PROPERTIES.has(key)) properties[key] = props[key];
  }
  const wirePriority = typeof props.priority === 'number' ? props.priority : 0;
  const contentType = env['content-type'];
  const contentEncoding = env['content-encoding'];
  return {
    wire: {
      headers,
      properties,
      priority: fromKombuPriority(wirePriority),
      contentType: typeof contentType === 'string' ? contentType : '',
      contentEncoding: typeof contentEncoding === 'string' ? contentEncoding : '',
      body,
    },
    deliveryTag,
    exchange: typeof info.exchange === 'string' ? info.exchange : '',
    routingKey: typeof info.routing_key === 'string' ? info.routing_key : '',
    redelivered: info.redelivered === true || headers.redelivered === true,
  };
}
