/**
 * The Celery protocol v2 task message codec: builds task messages as Celery's `as_task_v2` does,
 * encodes them to the transport-neutral WireMessage and decodes (and validates) what arrives.
 *
 * - Headers keep Celery's order; custom headers follow `ignore_result`. A decoded message whose
 *   headers are all present re-encodes to the same headers and the same body text.
 * - `lang` is `"js"`: Celery 5.2.6 never reads it for v2 messages (`celery/app/amqp.py` writes
 *   `"py"`; the only reader, `worker/strategy.py`, copies `body.lang` when converting a v1/hybrid
 *   body), so it is free to say who sent the message.
 * - Decoding refuses, with a MalformedMessageError that says why, what Celery would crash on or
 *   mis-run: a body that is not `[args, kwargs, embed]` (a 2-element body kills a Celery worker),
 *   a missing `task`/`id`, a content type other than JSON, headers of the wrong type. Protocol v1
 *   bodies (`{task, id, args, kwargs, …}`, no `task` header) are converted to v2.
 */
import { MalformedMessageError } from '../errors.js';
import { type DumpsOptions, dumps, loads } from './json.js';
import { argsRepr, kwargsRepr } from './repr.js';
import type { Embed, SignatureJson, TaskHeaders, TaskMessage, WireMessage } from './types.js';

export const CONTENT_TYPE = 'application/json';
export const CONTENT_ENCODING = 'utf-8';
/** The `lang` header Celeriac writes (see the module comment). */
export const LANG = 'js';

/** Everything `buildTaskMessage` needs; times are epoch milliseconds, time limits seconds. */
export interface TaskMessageInput {
  id: string;
  task: string;
  args?: readonly unknown[];
  kwargs?: Readonly<Record<string, unknown>>;
  /** Epoch ms, or null. Countdown is the caller's (eta = now + countdown). */
  eta?: number | null;
  /** Epoch ms, or null. Also sets the `expiration` property (ms left at send time). */
  expires?: number | null;
  /** API priority, 0–9, 9 most urgent. Default 0. */
  priority?: number;
  retries?: number;
  /** Celery's `[hard, soft]` in seconds. */
  timelimit?: readonly [number | null, number | null];
  /** Default: the task's own id. */
  rootId?: string | null;
  parentId?: string | null;
  group?: string | null;
  /** Position in a chord header; null for plain groups. */
  groupIndex?: number | null;
  shadow?: string | null;
  ignoreResult?: boolean;
  /** Custom headers, merged after `ignore_result` (they cannot replace a protocol header). */
  headers?: Readonly<Record<string, unknown>>;
  callbacks?: SignatureJson[] | null;
  errbacks?: SignatureJson[] | null;
  chain?: SignatureJson[] | null;
  chord?: SignatureJson | null;
  /** The sender's reply-to oid (messages/ids.ts `threadOid()`). */
  replyTo?: string;
  /** The sender's node name (messages/ids.ts `originName()`). */
  origin?: string;
  /**
   * Extra properties, placed after `reply_to` as Celery's worker places them on a retry
   * (`replaced_task_nesting`, `origin`). They cannot replace the ones built here.
   */
  properties?: Readonly<Record<string, unknown>>;
  /** Override the computed reprs (a retry keeps the original's). */
  argsrepr?: string;
  kwargsrepr?: string;
  /** Clock for the `expiration` property; default Date.now(). */
  now?: number;
}

const HEADER_ORDER = [
  'lang',
  'task',
  'id',
  'shadow',
  'eta',
  'expires',
  'group',
  'group_index',
  'retries',
  'timelimit',
  'root_id',
  'parent_id',
  'argsrepr',
  'kwargsrepr',
  'origin',
  'ignore_result',
] as const;
/** The headers protocol v2 defines; any other header is custom (it travels on with a retry). */
export const PROTOCOL_HEADERS: ReadonlySet<string> = new Set(HEADER_ORDER);
const EMBED_ORDER = ['callbacks', 'errbacks', 'chain', 'chord'] as const;

/**
 * A date as Python's `datetime.isoformat()` writes an aware UTC datetime:
 * `2030-01-02T03:04:05.678000+00:00` (no fraction when it is zero, as Python).
 *
 * @example
 * formatCeleryDate(Date.UTC(2030, 0, 2, 3, 4, 5, 678)) // '2030-01-02T03:04:05.678000+00:00'
 */
export function formatCeleryDate(epochMs: number): string {
  return `${naiveIso(epochMs)}+00:00`;
}

/**
 * A naive UTC ISO date as Celery's `datetime.utcnow().isoformat()` (`date_done`):
 * `2026-11-24T23:18:12.810000`.
 */
export function naiveIso(epochMs: number): string {
  const iso = new Date(epochMs).toISOString(); // 2030-01-02T03:04:05.678Z
  const ms = iso.slice(20, 23);
  return ms === '000' ? iso.slice(0, 19) : `${iso.slice(0, 19)}.${ms}000`;
}

const ISO =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2}(?::?\d{2}(?:\.\d+)?)?)?)?$/;

/**
 * Parses an eta/expires header into epoch ms. Accepts what Celery writes (`isoformat()`, any offset),
 * naive dates (UTC, as Celery's worker with `enable_utc`), and a `Z` suffix. Sub-millisecond digits
 * are dropped. Throws MalformedMessageError for anything else.
 *
 * @example
 * parseCeleryDate('2030-01-02T03:04:05.678901+00:00') // Date.UTC(2030, 0, 2, 3, 4, 5, 678)
 * parseCeleryDate('2020-01-01T00:00:00')              // naive: UTC
 */
export function parseCeleryDate(s: string): number {
  const m = ISO.exec(s.trim());
  if (m === null) throw new MalformedMessageError(`not an ISO-8601 date: '${s}'`);
  const [, y, mo, d, h = '0', mi = '0', sec = '0', frac = '', tz] = m;
  const ms = Number(frac.slice(0, 3).padEnd(3, '0'));
  let t = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec), ms);
  if (Number(y) < 100) t = new Date(t).setUTCFullYear(Number(y));
  if (tz !== undefined && tz !== 'Z' && tz !== 'z') {
    const digits = tz.slice(1).replaceAll(':', '');
    const offsetMin = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || '0');
    const offsetSec = Number(digits.slice(4) || '0');
    t -= (tz[0] === '-' ? -1 : 1) * (offsetMin * 60_000 + offsetSec * 1000);
  }
  const check = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (
    !Number.isFinite(t) ||
    check.getUTCDate() !== Number(d) ||
    Number(h) > 23 ||
    Number(mi) > 59 ||
    Number(sec) > 59
  ) {
    throw new MalformedMessageError(`not a valid date: '${s}'`);
  }
  return t;
}

function clampPriority(p: number | undefined): number {
  if (p === undefined || !Number.isFinite(p)) return 0;
  return Math.min(9, Math.max(0, Math.round(p)));
}

/**
 * Builds a task message as Celery's `as_task_v2` + `send_task_message` do: headers in Celery's
 * order, properties `correlation_id`, `reply_to`, `delivery_mode` 2 and, with `expires`,
 * `expiration` (ms left at send time, as a string, never negative).
 *
 * @example
 * const msg = buildTaskMessage({ id: uuid4(), task: 'tasks.add', args: [2, 3] });
 * msg.headers.argsrepr // '(2, 3)'
 */
export function buildTaskMessage(input: TaskMessageInput): TaskMessage {
  const args = input.args ? [...input.args] : [];
  const kwargs = input.kwargs ? { ...input.kwargs } : {};
  const eta = input.eta ?? null;
  const expires = input.expires ?? null;
  const headers: TaskHeaders = {
    lang: LANG,
    task: input.task,
    id: input.id,
    shadow: input.shadow ?? null,
    eta: eta === null ? null : formatCeleryDate(eta),
    expires: expires === null ? null : formatCeleryDate(expires),
    group: input.group ?? null,
    group_index: input.groupIndex ?? null,
    retries: input.retries ?? 0,
    timelimit: input.timelimit ? [input.timelimit[0], input.timelimit[1]] : [null, null],
    root_id: input.rootId || input.id,
    parent_id: input.parentId ?? null,
    argsrepr: input.argsrepr ?? argsRepr(args),
    kwargsrepr: input.kwargsrepr ?? kwargsRepr(kwargs),
    origin: input.origin ?? '',
    ignore_result: input.ignoreResult ?? false,
  };
  if (input.headers) {
    for (const [key, value] of Object.entries(input.headers)) {
      if (!PROTOCOL_HEADERS.has(key)) headers[key] = value;
    }
  }
  const properties: Record<string, unknown> = { correlation_id: input.id, reply_to: input.replyTo ?? '' };
  for (const [key, value] of Object.entries(input.properties ?? {})) {
    if (!(key in properties) && key !== 'delivery_mode' && key !== 'expiration') properties[key] = value;
  }
  properties.delivery_mode = 2;
  if (expires !== null) {
    properties.expiration = String(Math.max(0, Math.trunc(expires - (input.now ?? Date.now()))));
  }
  return {
    headers,
    properties,
    priority: clampPriority(input.priority),
    args,
    kwargs,
    embed: {
      callbacks: input.callbacks ?? null,
      errbacks: input.errbacks ?? null,
      chain: input.chain ?? null,
      chord: input.chord ?? null,
    },
  };
}

/**
 * Encodes a task message: body `[args, kwargs, embed]` as Python's `json.dumps` writes it,
 * content type application/json, encoding utf-8. Throws PayloadError (naming the path, e.g.
 * `args[1].when: BigInt is not JSON`) for what JSON cannot carry; pass `{ allowBigInt: true }` to
 * re-send values that came in as bigint.
 *
 * @example
 * encodeTask(buildTaskMessage({ id, task: 'tasks.add', args: [2, 3] })).body
 * // '[[2, 3], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]'
 */
export function encodeTask(msg: TaskMessage, options: Pick<DumpsOptions, 'allowBigInt'> = {}): WireMessage {
  const big = options.allowBigInt === true;
  const body = `[${dumps(msg.args, { allowBigInt: big, root: 'args' })}, ${dumps(msg.kwargs, { allowBigInt: big, root: 'kwargs' })}, ${dumps(msg.embed, { allowBigInt: big, root: 'embed' })}]`;
  return {
    headers: { ...msg.headers },
    properties: { ...msg.properties },
    priority: msg.priority,
    contentType: CONTENT_TYPE,
    contentEncoding: CONTENT_ENCODING,
    body,
  };
}

// ---------------------------------------------------------------------------------------------
// decode

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'bigint') return 'a number';
  if (typeof v === 'string') return `a string (${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)})`;
  return `${typeof v === 'number' || typeof v === 'boolean' ? 'a ' : ''}${typeof v} (${String(v)})`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(reason: string): never {
  throw new MalformedMessageError(reason);
}

function optString(headers: Record<string, unknown>, key: string): string | null {
  const v = headers[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') fail(`header '${key}' must be a string or null, got ${typeName(v)}`);
  return v;
}

function optInt(headers: Record<string, unknown>, key: string): number | null {
  const v = headers[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isInteger(v))
    fail(`header '${key}' must be an integer or null, got ${typeName(v)}`);
  return v;
}

function optDate(headers: Record<string, unknown>, key: string): string | null {
  const v = optString(headers, key);
  if (v !== null) {
    try {
      parseCeleryDate(v);
    } catch {
      fail(`header '${key}' must be an ISO-8601 date, got '${v}'`);
    }
  }
  return v;
}

function timelimit(v: unknown): [number | null, number | null] {
  if (v === undefined || v === null) return [null, null];
  const ok =
    Array.isArray(v) &&
    v.length === 2 &&
    v.every((x) => x === null || (typeof x === 'number' && Number.isFinite(x)));
  if (!ok) fail(`header 'timelimit' must be [hard, soft] (seconds or null), got ${JSON.stringify(v)}`);
  return [v[0] as number | null, v[1] as number | null];
}

function signatures(embed: Record<string, unknown>, key: string): SignatureJson[] | null {
  const v = embed[key];
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v) || !v.every(isRecord))
    fail(`embed '${key}' must be a list of signatures or null, got ${typeName(v)}`);
  return v as SignatureJson[];
}

function decodeEmbed(raw: unknown): Embed {
  if (raw !== null && raw !== undefined && !isRecord(raw)) {
    fail(`body[2] (embed) must be an object or null, got ${typeName(raw)}`);
  }
  const src = raw ?? {};
  const chord = src.chord ?? null;
  if (chord !== null && !isRecord(chord))
    fail(`embed 'chord' must be a signature or null, got ${typeName(chord)}`);
  const embed: Embed = {
    callbacks: signatures(src, 'callbacks'),
    errbacks: signatures(src, 'errbacks'),
    chain: signatures(src, 'chain'),
    chord: chord as SignatureJson | null,
  };
  for (const key in src) {
    if (Object.hasOwn(src, key) && !(EMBED_ORDER as readonly string[]).includes(key)) embed[key] = src[key];
  }
  return embed;
}

/** Validates headers and fills Celery's defaults, in Celery's order; other headers follow. */
function decodeHeaders(
  raw: Record<string, unknown>,
  args: unknown[],
  kwargs: Record<string, unknown>,
): TaskHeaders {
  const task = raw.task;
  if (typeof task !== 'string' || task === '') {
    fail(
      task === undefined
        ? "missing 'task' header"
        : `header 'task' must be a task name, got ${typeName(task)}`,
    );
  }
  const id = raw.id;
  if (typeof id !== 'string' || id === '') {
    fail(
      id === undefined ? "missing 'id' header" : `header 'id' must be a task id string, got ${typeName(id)}`,
    );
  }
  const retries = optInt(raw, 'retries') ?? 0;
  if (retries < 0) fail(`header 'retries' must not be negative, got ${retries}`);
  const ignore = raw.ignore_result;
  if (ignore !== undefined && ignore !== null && typeof ignore !== 'boolean') {
    fail(`header 'ignore_result' must be a boolean, got ${typeName(ignore)}`);
  }
  const headers: TaskHeaders = {
    lang: optString(raw, 'lang') ?? 'py',
    task,
    id,
    shadow: optString(raw, 'shadow'),
    eta: optDate(raw, 'eta'),
    expires: optDate(raw, 'expires'),
    group: optString(raw, 'group'),
    group_index: optInt(raw, 'group_index'),
    retries,
    timelimit: timelimit(raw.timelimit),
    root_id: optString(raw, 'root_id') ?? id,
    parent_id: optString(raw, 'parent_id'),
    argsrepr: optString(raw, 'argsrepr') ?? argsRepr(args),
    kwargsrepr: optString(raw, 'kwargsrepr') ?? kwargsRepr(kwargs),
    origin: optString(raw, 'origin') ?? '',
    ignore_result: ignore === true,
  };
  for (const key in raw) {
    if (Object.hasOwn(raw, key) && !PROTOCOL_HEADERS.has(key)) headers[key] = raw[key];
  }
  return headers;
}

/** Protocol v1: everything in a dict body; message headers override (as Celery's hybrid_to_proto2). */
function fromV1(
  body: Record<string, unknown>,
  wireHeaders: Record<string, unknown>,
): [Record<string, unknown>, unknown] {
  const raw: Record<string, unknown> = {
    lang: body.lang,
    task: body.task,
    id: body.id,
    shadow: body.shadow,
    eta: body.eta,
    expires: body.expires,
    group: body.group ?? body.taskset,
    group_index: body.group_index,
    retries: body.retries,
    timelimit: body.timelimit,
    root_id: body.root_id,
    parent_id: body.parent_id,
    argsrepr: body.argsrepr,
    kwargsrepr: body.kwargsrepr,
    origin: body.origin,
    ignore_result: body.ignore_result,
    ...wireHeaders,
  };
  const embed = {
    callbacks: body.callbacks ?? null,
    errbacks: body.errbacks ?? null,
    chain: null,
    chord: body.chord ?? null,
  };
  return [raw, [body.args ?? [], body.kwargs ?? {}, embed]];
}

function acceptedEncoding(encoding: string): boolean {
  const e = encoding.toLowerCase();
  return e === 'utf-8' || e === 'utf8' || e === '';
}

/**
 * Decodes and validates a task message. Missing optional headers get Celery's defaults (retries 0,
 * root_id = id, timelimit [null, null], reprs computed…); protocol v1 bodies are converted.
 * Throws MalformedMessageError with a precise reason.
 *
 * @example
 * decodeTask(wire).headers.task // 'tasks.add'
 */
export function decodeTask(wire: WireMessage): TaskMessage {
  if (wire.contentType !== CONTENT_TYPE) {
    fail(
      wire.contentType
        ? `content type '${wire.contentType}' is not accepted (only ${CONTENT_TYPE})`
        : `missing content type (expected ${CONTENT_TYPE})`,
    );
  }
  if (!acceptedEncoding(wire.contentEncoding ?? '')) {
    fail(`content encoding '${wire.contentEncoding}' is not supported (only utf-8)`);
  }
  if (!isRecord(wire.headers)) fail(`headers must be an object, got ${typeName(wire.headers)}`);
  let body: unknown;
  try {
    body = loads(wire.body);
  } catch (err) {
    fail(`body is not JSON: ${(err as Error).message}`);
  }
  let rawHeaders = wire.headers;
  if (rawHeaders.task === undefined && isRecord(body) && typeof body.task === 'string') {
    [rawHeaders, body] = fromV1(body, rawHeaders);
  }
  if (!Array.isArray(body)) fail(`body must be [args, kwargs, embed], got ${typeName(body)}`);
  if (body.length !== 3) {
    fail(`body must be [args, kwargs, embed], got ${body.length} element${body.length === 1 ? '' : 's'}`);
  }
  const [args, kwargs, embed] = body as [unknown, unknown, unknown];
  if (!Array.isArray(args)) fail(`body[0] (args) must be an array, got ${typeName(args)}`);
  if (!isRecord(kwargs)) fail(`body[1] (kwargs) must be an object, got ${typeName(kwargs)}`);
  const headers = decodeHeaders(rawHeaders, args, kwargs);
  return {
    headers,
    properties: isRecord(wire.properties) ? { ...wire.properties } : {},
    priority: wire.priority,
    args,
    kwargs,
    embed: decodeEmbed(embed),
  };
}
