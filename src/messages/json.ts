/**
 * JSON exactly as Python's `json.dumps` writes it with its defaults, and a lossless `loads`.
 *
 * Celery serializes bodies, headers (on Redis, the whole kombu envelope) and result metas with
 * `json.dumps(obj)`: separators `", "` and `": "`, `ensure_ascii=True` (every character outside
 * printable ASCII as a lowercase `\uXXXX`, astral characters as surrogate pairs), keys in insertion
 * order. Writing the same bytes lets a message or a meta round-trip through Celeriac unchanged.
 *
 * Known differences, all from JavaScript having one number type:
 * - a Python float with an integral value (`2.0`) reads as `2` and is written back as `2`;
 * - a JS object lists integer-like keys (`"1"`, `"2"`) first, whatever their order on the wire.
 *
 * Integers beyond 2^53 decode as `bigint` (never rounded); `dumps` refuses a bigint unless
 * `{ allowBigInt: true }` is passed, which writes it as an integer literal as Python would.
 */
import { PayloadError } from '../errors.js';

export interface DumpsOptions {
  /** Write a `bigint` as an integer literal (for values that came in as bigint). Default false. */
  allowBigInt?: boolean;
  /** Path prefix for error messages, e.g. `args` → `args[1].when: BigInt is not JSON`. */
  root?: string;
}

/** Thrown inside the walk; each frame adds its path segment while it unwinds. */
class Refusal {
  readonly segments: string[] = [];
  constructor(readonly reason: string) {}
}

/** Nesting beyond this is either a cycle or absurd; the slow path then finds out which. */
const MAX_DEPTH = 1000;
const DEEP = new Refusal('deep');

/** Anything that needs escaping: quote, backslash, controls, DEL and everything non-ASCII. */
const NEEDS_ESCAPE = /[^\x20\x21\x23-\x5b\x5d-\x7e]/;
const NON_ASCII = /[^\x20-\x7e]/;
const ESCAPABLE = /[\u007f-\uffff]/g;
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function escapeChar(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** A JSON string literal with Python's `ensure_ascii=True` escaping. */
export function quote(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  const json = JSON.stringify(s);
  // JSON.stringify already escapes quotes, backslashes, controls and lone surrogates; Python also
  // escapes DEL and everything non-ASCII. The test is cheap for the common pure-ASCII string.
  return NON_ASCII.test(s) ? json.replace(ESCAPABLE, escapeChar) : json;
}

/**
 * A number as Python writes it: integers as digits, floats as `repr(float)` (shortest round-trip
 * digits, exponent form below 1e-4 with at least two exponent digits: `1e-05`, `1.5e+300`).
 * The caller has already refused NaN and ±Infinity.
 */
export function formatNumber(n: number): string {
  if (Number.isInteger(n) && Math.abs(n) < 1e21) return String(n);
  let s = String(n);
  if (!s.includes('e')) {
    if (Math.abs(n) >= 1e-4) return s;
    s = n.toExponential();
  }
  return s.replace(/e([+-])(\d)$/, 'e$10$2');
}

function segmentFor(key: string | number): string {
  if (typeof key === 'number') return `[${key}]`;
  return IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

function describe(value: object): string | null {
  if (value instanceof Map) return 'a Map is not JSON (use a plain object)';
  if (value instanceof Set) return 'a Set is not JSON (use an array)';
  if (Buffer.isBuffer(value)) return 'a Buffer is not JSON (send it as a base64 string)';
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    return `a ${value.constructor.name} is not JSON (send it as an array or a base64 string)`;
  }
  if (value instanceof WeakMap || value instanceof WeakSet) return `a ${value.constructor.name} is not JSON`;
  if (value instanceof Promise) return 'a Promise is not JSON (await it first)';
  return null;
}

function write(value: unknown, big: boolean, depth: number): string {
  switch (typeof value) {
    case 'string':
      return quote(value);
    case 'number':
      if (Number.isFinite(value)) return formatNumber(value);
      throw new Refusal(`${value} is not JSON`);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      if (big) return value.toString();
      throw new Refusal('BigInt is not JSON');
    case 'undefined':
      throw new Refusal('undefined is not JSON (use null)');
    case 'function':
      throw new Refusal('a function is not JSON');
    case 'symbol':
      throw new Refusal('a Symbol is not JSON');
  }
  if (value === null) return 'null';
  if (depth > MAX_DEPTH) throw DEEP;
  const obj = value as object;
  if (Array.isArray(obj)) {
    const n = obj.length;
    if (n === 0) return '[]';
    let out = '[';
    for (let i = 0; i < n; i++) {
      const item: unknown = obj[i];
      try {
        if (i > 0) out += ', ';
        out += write(item, big, depth + 1);
      } catch (e) {
        if (e instanceof Refusal && e !== DEEP) e.segments.push(segmentFor(i));
        throw e;
      }
    }
    return `${out}]`;
  }
  const proto = Object.getPrototypeOf(obj);
  if (proto !== Object.prototype && proto !== null) {
    // Buffer has a toJSON ({type, data}); refuse it and its kin before calling toJSON.
    const refused = describe(obj);
    if (refused) throw new Refusal(refused);
    const toJSON = (obj as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return write(toJSON.call(obj, ''), big, depth + 1);
  }
  if (obj instanceof Number || obj instanceof String || obj instanceof Boolean) {
    return write(obj.valueOf(), big, depth);
  }
  const record = obj as Record<string, unknown>;
  let out = '{';
  let first = true;
  for (const key in record) {
    if (!Object.hasOwn(record, key)) continue;
    const item = record[key];
    // JSON.stringify drops undefined properties; so does Python's caller (it never has them).
    if (item === undefined) continue;
    try {
      const text = write(item, big, depth + 1);
      out += first ? `${quote(key)}: ${text}` : `, ${quote(key)}: ${text}`;
      first = false;
    } catch (e) {
      if (e instanceof Refusal && e !== DEEP) e.segments.push(segmentFor(key));
      throw e;
    }
  }
  return `${out}}`;
}

/** Slow path after DEEP: the path of the first back-reference, or null when it is merely deep. */
function findCycle(value: unknown, path: string, ancestors: object[]): string | null {
  if (typeof value !== 'object' || value === null) return null;
  if (ancestors.includes(value)) return path;
  ancestors.push(value);
  try {
    const entries: [string | number, unknown][] = Array.isArray(value)
      ? value.map((v, i): [number, unknown] => [i, v])
      : Object.entries(value);
    for (const [key, item] of entries) {
      const found = findCycle(item, path + segmentFor(key), ancestors);
      if (found) return found;
    }
    return null;
  } finally {
    ancestors.pop();
  }
}

function joinPath(root: string, segments: readonly string[]): string {
  let path = root;
  for (let i = segments.length - 1; i >= 0; i--) path += segments[i];
  return path.startsWith('.') ? path.slice(1) : path;
}

/**
 * Serializes a value as Python's `json.dumps(value)` would. Refuses, with a PayloadError naming
 * the path, what JSON cannot carry: functions, symbols, undefined (top level or in an array;
 * undefined object properties are dropped as JSON.stringify does), cycles, Buffers and typed
 * arrays, NaN and ±Infinity, Map, Set, and bigint unless `allowBigInt`. Dates go through
 * `toJSON()` (ISO strings).
 *
 * @example
 * dumps([[2, 3], {}, { callbacks: null }]) // '[[2, 3], {}, {"callbacks": null}]'
 * dumps({ when: 1n }, { root: 'args[1]' }) // throws PayloadError 'args[1].when: BigInt is not JSON'
 */
export function dumps(value: unknown, options: DumpsOptions = {}): string {
  const big = options.allowBigInt === true;
  try {
    return write(value, big, 0);
  } catch (e) {
    const root = options.root ?? '';
    if (e === DEEP) {
      const cycle = findCycle(value, root, []);
      if (cycle !== null) {
        throw new PayloadError(
          cycle.startsWith('.') ? cycle.slice(1) : cycle,
          'circular reference is not JSON',
        );
      }
      throw new PayloadError(root, `nesting deeper than ${MAX_DEPTH} levels is not JSON`);
    }
    if (e instanceof Refusal) throw new PayloadError(joinPath(root, e.segments), e.reason);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// loads

/** A run this long may be an integer beyond 2^53 (9007199254740992 has 16 digits). */
const LONG_DIGITS = /\d{16}/;

/**
 * Parses JSON text. Integers beyond Number.MAX_SAFE_INTEGER decode as `bigint`, without loss;
 * everything else is what JSON.parse gives. The lossless parser only runs when the text holds a
 * run of 16 or more digits; otherwise this is JSON.parse. `scanFrom`: the caller knows the text
 * before this index holds no number (a kombu envelope's base64 body), so only the rest is scanned.
 *
 * @example
 * loads('[1, 12345678901234567890]') // [1, 12345678901234567890n]
 */
export function loads(text: string, scanFrom = 0): unknown {
  if (!LONG_DIGITS.test(scanFrom > 0 ? text.slice(scanFrom) : text)) return JSON.parse(text);
  // Validate with the native parser first: it gives the usual SyntaxError for bad input, so the
  // slow parser below only ever sees valid JSON.
  JSON.parse(text);
  return new LosslessParser(text).parseDocument();
}

const WS = /[ \t\n\r]*/y;
const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;

class LosslessParser {
  private pos = 0;
  constructor(private readonly text: string) {}

  parseDocument(): unknown {
    const value = this.value();
    this.ws();
    return value;
  }

  private ws(): void {
    WS.lastIndex = this.pos;
    WS.exec(this.text);
    this.pos = WS.lastIndex;
  }

  private value(): unknown {
    this.ws();
    const c = this.text.charCodeAt(this.pos);
    if (c === 0x7b) return this.object();
    if (c === 0x5b) return this.array();
    if (c === 0x22) return this.string();
    if (c === 0x74) return this.literal('true', true);
    if (c === 0x66) return this.literal('false', false);
    if (c === 0x6e) return this.literal('null', null);
    return this.number();
  }

  private literal<T>(word: string, value: T): T {
    this.pos += word.length;
    return value;
  }

  private number(): number | bigint {
    NUMBER.lastIndex = this.pos;
    const m = NUMBER.exec(this.text) as RegExpExecArray;
    this.pos = NUMBER.lastIndex;
    const n = Number(m[0]);
    if (m[1] === undefined && m[2] === undefined && !Number.isSafeInteger(n)) return BigInt(m[0]);
    return n;
  }

  private string(): string {
    const text = this.text;
    const start = this.pos;
    let from = start + 1;
    for (;;) {
      const q = text.indexOf('"', from);
      // The quote closes the string unless an odd number of backslashes precede it.
      let b = q - 1;
      while (text.charCodeAt(b) === 0x5c) b--;
      if ((q - 1 - b) % 2 === 0) {
        this.pos = q + 1;
        break;
      }
      from = q + 1;
    }
    const raw = text.slice(start, this.pos);
    return raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1);
  }

  private array(): unknown[] {
    this.pos++;
    const out: unknown[] = [];
    this.ws();
    if (this.text.charCodeAt(this.pos) === 0x5d) {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value());
      this.ws();
      if (this.text.charCodeAt(this.pos++) === 0x5d) return out;
    }
  }

  private object(): Record<string, unknown> {
    this.pos++;
    const out: Record<string, unknown> = {};
    this.ws();
    if (this.text.charCodeAt(this.pos) === 0x7d) {
      this.pos++;
      return out;
    }
    for (;;) {
      this.ws();
      const key = this.string();
      this.ws();
      this.pos++; // ':'
      const value = this.value();
      // A "__proto__" key must become an own property, as with JSON.parse.
      if (key === '__proto__') {
        Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
      } else {
        out[key] = value;
      }
      this.ws();
      if (this.text.charCodeAt(this.pos++) === 0x7d) return out;
    }
  }
}
