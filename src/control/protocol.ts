/**
 * Celery's remote-control protocol (kombu's pidbox), as on the wire (PROTOCOL.md section 7,
 * fixtures `redis-pidbox.json` and `amqp-pidbox.json`).
 *
 * A request is published on the fanout exchange `celery.pidbox` (routing key `""`, delivery_mode 2,
 * headers `{"clock", "expires"}`) with the JSON body
 * `{"method", "arguments", "destination", "pattern", "matcher"[, "ticket", "reply_to"]}`; a cast
 * (no reply wanted) has no `ticket`/`reply_to`. Each worker answers on the direct exchange
 * `reply.celery.pidbox` with routing key = the client's oid (delivery_mode 1, headers
 * `{"ticket", "clock"}`) and the body `{"<nodename>": <reply>}`.
 */
import { MalformedMessageError } from '../errors.js';
import { dumps, loads } from '../messages/json.js';
import type { WireMessage } from '../messages/types.js';

/** The fanout exchange every worker's mailbox listens on (`<namespace>.pidbox`). */
export const PIDBOX_EXCHANGE = 'celery.pidbox';
/** The direct exchange replies go to (`reply.<namespace>.pidbox`). */
export const REPLY_EXCHANGE = 'reply.celery.pidbox';
/** Celery's default timeout of a broadcast that waits for replies: 1 s. */
export const DEFAULT_TIMEOUT_MS = 1000;
/** How long a revoke is kept in the broker's store: Celery's REVOKE_EXPIRES, 3 h. */
export const REVOKE_EXPIRES_MS = 3 * 3600 * 1000;

/** A control request's body, with Celery's field names. */
export interface ControlRequest {
  method: string;
  arguments: Record<string, unknown>;
  /** Node names the request is for; null means every node. */
  destination: string[] | null;
  /** With `matcher` (`glob` or `pcre`): nodes whose name matches. */
  pattern: string | null;
  matcher: string | null;
  /** Present when a reply is wanted. */
  ticket?: string;
  reply_to?: { exchange: string; routing_key: string };
}

/** A request as a worker received it: the body plus the headers that matter. */
export interface ReceivedRequest extends ControlRequest {
  /** Epoch seconds after which the request must be ignored (0 or absent: never). */
  expires: number | null;
  clock: number;
}

/** A reply as a client received it. */
export interface ReceivedReply {
  ticket: string | null;
  /** Epoch seconds after which the reply is stale (Celery's collector honours it; workers send none). */
  expires: number | null;
  clock: number;
  /** `{"<nodename>": <reply>}` */
  body: Record<string, unknown>;
}

/**
 * kombu's LamportClock: `forward()` before each send, `adjust(remote)` on each receive.
 *
 * @example
 * const clock = new LamportClock(); clock.forward(); // 1
 */
export class LamportClock {
  #value = 0;

  get value(): number {
    return this.#value;
  }

  forward(): number {
    this.#value += 1;
    return this.#value;
  }

  adjust(other: unknown): number {
    if (typeof other === 'number' && Number.isFinite(other)) this.#value = Math.max(this.#value, other) + 1;
    return this.#value;
  }
}

function wire(
  headers: Record<string, unknown>,
  deliveryMode: number,
  body: unknown,
  priority: number,
): WireMessage {
  return {
    headers,
    properties: { delivery_mode: deliveryMode },
    priority,
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    body: dumps(body, { allowBigInt: true, root: 'control message' }),
  };
}

/**
 * The request message exactly as kombu's `Mailbox._publish` writes it. `timeoutMs` sets the
 * `expires` header (now + timeout, epoch seconds), 0 for a cast without one. `priority` is the
 * API priority that the transport maps to Celery's default (wire 0): `transport.defaultPriority`.
 *
 * @example
 * requestMessage({ method: 'ping', arguments: {}, destination: null, pattern: null, matcher: null, ticket, reply_to }, { clock: 1, timeoutMs: 1000 })
 */
export function requestMessage(
  request: ControlRequest,
  options: { clock: number; timeoutMs: number; priority?: number; now?: number },
): WireMessage {
  const body: Record<string, unknown> = {
    method: request.method,
    arguments: request.arguments,
    destination: request.destination,
    pattern: request.pattern,
    matcher: request.matcher,
  };
  if (request.ticket !== undefined) {
    body.ticket = request.ticket;
    body.reply_to = request.reply_to;
  }
  const now = options.now ?? Date.now();
  const expires = options.timeoutMs > 0 ? (now + options.timeoutMs) / 1000 : 0;
  return wire({ clock: options.clock, expires }, 2, body, options.priority ?? 0);
}

/** The reply message exactly as kombu's `Mailbox._publish_reply` writes it. */
export function replyMessage(
  nodename: string,
  reply: unknown,
  options: { ticket: string; clock: number; priority?: number },
): WireMessage {
  return wire(
    { ticket: options.ticket, clock: options.clock },
    1,
    { [nodename]: reply },
    options.priority ?? 0,
  );
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(reason: string): never {
  throw new MalformedMessageError(`control request: ${reason}`);
}

function parseBody(message: WireMessage, what: string): unknown {
  if (message.contentType && message.contentType !== 'application/json')
    throw new MalformedMessageError(`${what}: content type '${message.contentType}' is not application/json`);
  try {
    return loads(message.body);
  } catch (err) {
    throw new MalformedMessageError(`${what}: body is not JSON: ${(err as Error).message}`, { cause: err });
  }
}

function epochSeconds(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : null;
}

/**
 * Decodes and checks a request. Throws MalformedMessageError naming what is wrong (the mailbox logs
 * it and ignores the message; a malformed request never stops a worker).
 */
export function parseRequest(message: WireMessage): ReceivedRequest {
  const body = parseBody(message, 'control request');
  if (!isRecord(body)) fail('body must be a JSON object');
  const { method, destination, pattern, matcher, ticket, reply_to: replyTo } = body;
  if (typeof method !== 'string' || method === '') fail("'method' must be a non-empty string");
  const args = body.arguments ?? {};
  if (!isRecord(args)) fail("'arguments' must be an object");
  if (destination !== undefined && destination !== null) {
    if (!Array.isArray(destination) || destination.some((d) => typeof d !== 'string'))
      fail("'destination' must be a list of node names or null");
  }
  const request: ReceivedRequest = {
    method,
    arguments: args,
    destination: Array.isArray(destination) ? (destination as string[]) : null,
    pattern: typeof pattern === 'string' ? pattern : null,
    matcher: typeof matcher === 'string' ? matcher : null,
    expires: epochSeconds(message.headers.expires),
    clock: typeof message.headers.clock === 'number' ? message.headers.clock : 0,
  };
  if (replyTo !== undefined && replyTo !== null) {
    if (!isRecord(replyTo) || typeof replyTo.exchange !== 'string' || typeof replyTo.routing_key !== 'string')
      fail("'reply_to' must be {exchange, routing_key}");
    if (typeof ticket !== 'string') fail("'ticket' must be a string when 'reply_to' is given");
    request.ticket = ticket;
    request.reply_to = { exchange: replyTo.exchange, routing_key: replyTo.routing_key };
  }
  return request;
}

/** Decodes a reply; throws MalformedMessageError when it is not `{"<node>": …}` JSON. */
export function parseReply(message: WireMessage): ReceivedReply {
  const body = parseBody(message, 'control reply');
  if (!isRecord(body)) throw new MalformedMessageError('control reply: body must be a JSON object');
  const ticket = message.headers.ticket;
  return {
    ticket: typeof ticket === 'string' ? ticket : null,
    expires: epochSeconds(message.headers.expires),
    clock: typeof message.headers.clock === 'number' ? message.headers.clock : 0,
    body,
  };
}

/**
 * kombu's `match(hostname, pattern, matcher)`: `glob` (fnmatch) or `pcre` (a regular expression
 * searched from the start, as Python's `re.match`). An unknown matcher matches nothing.
 */
export function matches(hostname: string, pattern: string, matcher: string): boolean {
  if (matcher === 'glob') {
    const source = pattern
      .replace(/[.+^${}()|\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.');
    return new RegExp(`^${source}$`, 's').test(hostname);
  }
  if (matcher === 'pcre') {
    try {
      return new RegExp(`^(?:${pattern})`).test(hostname);
    } catch {
      return false;
    }
  }
  return false;
}

/** True when the request is for this node (destination, or pattern + matcher, or everyone). */
export function isFor(request: ControlRequest, hostname: string): boolean {
  if (request.destination && request.destination.length > 0) return request.destination.includes(hostname);
  if (request.pattern && request.matcher) return matches(hostname, request.pattern, request.matcher);
  return true;
}
