/**
 * WireMessage ⇄ AMQP basic properties and body, as Celery puts them on the wire (PROTOCOL.md §1.4):
 * application headers in Celery's order, body = the raw UTF-8 JSON, properties `content_type`,
 * `content_encoding`, `delivery_mode`, `priority`, `correlation_id`, `reply_to`, `expiration`.
 *
 * Celeriac's own bookkeeping travels in `x-celeriac-*` headers that are stripped before a message is
 * handed out (Python ignores them):
 * - `x-celeriac-deliveries`: deliveries this message had before this copy was published (requeue,
 *   a redelivery after a lost consumer, or a defer carry it forward), so `deliveryCount` survives
 *   any number of crashes (the redelivered flag alone only says "at least once before");
 * - `x-celeriac-not-before`: epoch ms before which a copy travelling through the delay queues must
 *   not be handed out;
 * - `x-celeriac-reason`, `x-celeriac-dead-at`, `x-celeriac-dead-id`: on dead letters.
 * RabbitMQ's dead-lettering headers (`x-death`, `x-first-death-*`, `x-last-death-*`) added by the
 * delay queues are stripped too.
 */
import type { WireMessage } from '../../messages/types.js';

export const H_DELIVERIES = 'x-celeriac-deliveries';
export const H_NOT_BEFORE = 'x-celeriac-not-before';
export const H_REASON = 'x-celeriac-reason';
export const H_DEAD_AT = 'x-celeriac-dead-at';
export const H_DEAD_ID = 'x-celeriac-dead-id';

const STRIPPED = (name: string): boolean =>
  name.startsWith('x-celeriac-') ||
  name === 'x-death' ||
  name.startsWith('x-first-death-') ||
  name.startsWith('x-last-death-') ||
  name === 'x-delivery-count';

/** What we need of an incoming rabbitmq-client message (AsyncMessage or SyncMessage). */
export interface IncomingFrame {
  body: unknown;
  headers?: Record<string, unknown>;
  contentType?: string;
  contentEncoding?: string;
  priority?: number;
  correlationId?: string;
  replyTo?: string;
  deliveryMode?: number;
  expiration?: string;
  messageId?: string;
  type?: string;
  appId?: string;
  redelivered?: boolean;
}

/** The envelope fields we publish with (a subset of rabbitmq-client's Envelope). */
export interface OutgoingEnvelope {
  exchange: string;
  routingKey: string;
  mandatory?: boolean;
  contentType?: string;
  contentEncoding?: string;
  headers: Record<string, unknown>;
  deliveryMode: number;
  priority: number;
  correlationId?: string;
  replyTo?: string;
  expiration?: string;
  messageId?: string;
  type?: string;
  appId?: string;
  /** Always undefined: rabbitmq-client would add a timestamp property that Celery never sends. */
  timestamp: undefined;
}

/** The body as text: rabbitmq-client hands JSON without content_encoding already parsed (see module doc). */
export function bodyText(body: unknown): string {
  if (Buffer.isBuffer(body)) return body.toString('utf8');
  if (typeof body === 'string') return body;
  // application/json with no content_encoding arrives parsed; Celery always sends `utf-8`, so only a
  // hand-made message lands here, and integers beyond 2^53 in it may lose precision.
  return JSON.stringify(body) ?? '';
}

/** AMQP priority → API priority (the same 0–9 scale on AMQP; anything above 9 counts as 9). */
function apiPriority(p: number | undefined): number {
  if (typeof p !== 'number' || !Number.isFinite(p)) return 0;
  return Math.max(0, Math.min(9, Math.trunc(p)));
}

/** Decodes an incoming frame into the transport-neutral WireMessage (Celeriac headers stripped). */
export function toWireMessage(frame: IncomingFrame): WireMessage {
  const headers: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(frame.headers ?? {})) if (!STRIPPED(k)) headers[k] = v;
  const properties: Record<string, unknown> = {};
  if (frame.correlationId !== undefined) properties.correlation_id = frame.correlationId;
  if (frame.replyTo !== undefined) properties.reply_to = frame.replyTo;
  properties.delivery_mode = frame.deliveryMode ?? 1;
  if (frame.expiration !== undefined) properties.expiration = frame.expiration;
  if (frame.messageId !== undefined) properties.message_id = frame.messageId;
  if (frame.type !== undefined) properties.type = frame.type;
  if (frame.appId !== undefined) properties.app_id = frame.appId;
  return {
    headers,
    properties,
    priority: apiPriority(frame.priority),
    contentType: frame.contentType ?? '',
    contentEncoding: frame.contentEncoding ?? '',
    body: bodyText(frame.body),
  };
}

/**
 * The envelope and body to publish a WireMessage to `routingKey` on `exchange` ('' = the default
 * exchange, as Celery publishes tasks), with extra Celeriac headers after the message's own.
 */
export function toEnvelope(
  message: WireMessage,
  exchange: string,
  routingKey: string,
  extraHeaders: Record<string, unknown> = {},
): { envelope: OutgoingEnvelope; body: Buffer } {
  const p = message.properties;
  const envelope: OutgoingEnvelope = {
    exchange,
    routingKey,
    contentType: message.contentType || undefined,
    contentEncoding: message.contentEncoding || undefined,
    headers: { ...message.headers, ...extraHeaders },
    deliveryMode: p.delivery_mode === 1 ? 1 : 2,
    priority: apiPriority(message.priority),
    timestamp: undefined,
  };
  if (typeof p.correlation_id === 'string') envelope.correlationId = p.correlation_id;
  if (typeof p.reply_to === 'string') envelope.replyTo = p.reply_to;
  if (typeof p.expiration === 'string' || typeof p.expiration === 'number')
    envelope.expiration = String(p.expiration);
  if (typeof p.message_id === 'string') envelope.messageId = p.message_id;
  if (typeof p.type === 'string') envelope.type = p.type;
  if (typeof p.app_id === 'string') envelope.appId = p.app_id;
  return { envelope, body: Buffer.from(message.body, 'utf8') };
}

/** An incoming frame republished as is (a malformed message keeps its bytes), with headers changed. */
export function rawEnvelope(
  frame: IncomingFrame,
  exchange: string,
  routingKey: string,
  headers: Record<string, unknown>,
): { envelope: OutgoingEnvelope; body: Buffer } {
  const envelope: OutgoingEnvelope = {
    exchange,
    routingKey,
    contentType: frame.contentType,
    contentEncoding: frame.contentEncoding,
    headers,
    deliveryMode: frame.deliveryMode === 1 ? 1 : 2,
    priority: frame.priority ?? 0,
    timestamp: undefined,
  };
  if (frame.correlationId !== undefined) envelope.correlationId = frame.correlationId;
  if (frame.replyTo !== undefined) envelope.replyTo = frame.replyTo;
  if (frame.expiration !== undefined) envelope.expiration = frame.expiration;
  if (frame.messageId !== undefined) envelope.messageId = frame.messageId;
  if (frame.type !== undefined) envelope.type = frame.type;
  if (frame.appId !== undefined) envelope.appId = frame.appId;
  const body = Buffer.isBuffer(frame.body) ? frame.body : Buffer.from(bodyText(frame.body), 'utf8');
  return { envelope, body };
}

/** The headers of a frame without RabbitMQ's dead-lettering ones and without `x-celeriac-*`. */
export function cleanHeaders(frame: IncomingFrame): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(frame.headers ?? {})) if (!STRIPPED(k)) out[k] = v;
  return out;
}

/** A numeric header (rabbitmq-client decodes AMQP integers as numbers), or `fallback`. */
export function numberHeader(frame: IncomingFrame, name: string, fallback: number): number {
  const v = frame.headers?.[name];
  const n =
    typeof v === 'number'
      ? v
      : typeof v === 'bigint'
        ? Number(v)
        : typeof v === 'string'
          ? Number(v)
          : Number.NaN;
  return Number.isFinite(n) ? n : fallback;
}
