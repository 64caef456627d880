/**
 * Python reprs for the `argsrepr` / `kwargsrepr` headers and events, as Celery 5.2 writes them with
 * `celery.utils.saferepr.saferepr(obj, maxlen=1024)` (maxlevels 3).
 *
 * This is a port of saferepr's token stream, not of Python's `repr`, so it keeps saferepr's quirks:
 * - strings are always in single quotes with only `'` escaped (`'it\'s'`); newlines, backslashes and
 *   non-ASCII characters are written as they are;
 * - containers nested 3 levels deep become `[...]`, `{...}`, `(...)`;
 * - the length budget is spent token by token: a string or number is cut at the remaining budget
 *   (at its last space, then `...`), and once the budget is gone `, ...` is written followed by the
 *   closing brackets still pending (the bracket whose turn it was is lost, as in Celery).
 *
 * Values are shown as Python receives them after JSON: arrays as lists (the top-level args as a
 * tuple), objects as dicts, `null` as None, booleans as True/False, integers as digits, other
 * numbers as Python floats (`1e-05`), Dates and other `toJSON()` objects as what they serialize to.
 * An integral JS number prints as an int (`2`, never `2.0`): JS cannot tell them apart.
 */
import { formatNumber } from './json.js';

/** Celery's `argsrepr_maxsize` / `kwargsrepr_maxsize` / `resultrepr_maxsize`. */
export const REPR_MAXLEN = 1024;

export interface SafeReprOptions {
  /** Length budget in characters (code points); default 1024. `null`: no limit. */
  maxlen?: number | null;
  /** Containers this deep are shown as `[...]`; default 3, as Celery. */
  maxlevels?: number;
  /** Show a top-level array as a tuple (`(1, 2)`, `(1,)`, `()`). */
  tuple?: boolean;
}

type Literal = {
  readonly kind: 'lit';
  readonly value: string;
  readonly truncate: boolean;
  readonly dir: number;
};
type Item = Literal | { kind: 'key'; value: string } | { kind: 'dirty' } | { kind: 'val'; value: unknown };

const lit = (value: string, truncate: boolean, dir: number): Literal => ({
  kind: 'lit',
  value,
  truncate,
  dir,
});
const DICT_START = lit('{', false, 1);
const DICT_KVSEP = lit(': ', true, 0);
const DICT_END = lit('}', false, -1);
const LIST_START = lit('[', false, 1);
const LIST_END = lit(']', false, -1);
const LIST_SEP = lit(', ', true, 0);
const TUPLE_START = lit('(', false, 1);
const TUPLE_END = lit(')', false, -1);
const TUPLE_END_SV = lit(',)', false, -1);
const DIRTY: Item = { kind: 'dirty' };

/** A container being streamed: `[start, inner tokens…, dirty, end]`, then back to `parent`. */
interface Frame {
  next(): Item | undefined;
}

class ValuesFrame implements Frame {
  private pos = 0;
  constructor(
    private readonly start: Literal | null,
    private readonly values: readonly unknown[],
    private readonly end: Literal | null,
  ) {}
  next(): Item | undefined {
    const n = this.values.length;
    const inner = n === 0 ? 0 : 2 * n - 1;
    const p = this.pos++;
    if (this.start === null) {
      // The root frame: just the one value.
      return p < n ? { kind: 'val', value: this.values[p] } : undefined;
    }
    if (p === 0) return this.start;
    const j = p - 1;
    if (j < inner) return j % 2 === 0 ? { kind: 'val', value: this.values[j / 2] } : LIST_SEP;
    if (j === inner) return DIRTY;
    if (j === inner + 1) return this.end ?? undefined;
    return undefined;
  }
}

class DictFrame implements Frame {
  private pos = 0;
  constructor(
    private readonly keys: readonly string[],
    private readonly record: Readonly<Record<string, unknown>>,
  ) {}
  next(): Item | undefined {
    const n = this.keys.length;
    const inner = n === 0 ? 0 : 4 * n - 1;
    const p = this.pos++;
    if (p === 0) return DICT_START;
    const j = p - 1;
    if (j < inner) {
      const key = this.keys[j >> 2] as string;
      switch (j % 4) {
        case 0:
          return { kind: 'key', value: key };
        case 1:
          return DICT_KVSEP;
        case 2:
          return { kind: 'val', value: this.record[key] };
        default:
          return LIST_SEP;
      }
    }
    if (j === inner) return DIRTY;
    if (j === inner + 1) return DICT_END;
    return undefined;
  }
}

/** Python's `len()` counts code points; JS `length` counts UTF-16 units. */
const SURROGATE = /[\ud800-\udfff]/;
function pyLen(s: string): number {
  if (!SURROGATE.test(s)) return s.length;
  let n = 0;
  for (const _ of s) n++;
  return n;
}
function pySlice(s: string, end: number): string {
  if (!SURROGATE.test(s)) return s.slice(0, end);
  return Array.from(s).slice(0, end).join('');
}

/** celery.utils.text.truncate: cut at maxlen, back to the last space, then `...`. */
function truncate(s: string, maxlen: number | null): string {
  if (maxlen && pyLen(s) >= maxlen) {
    const head = pySlice(s, maxlen);
    const space = head.lastIndexOf(' ');
    return (space >= 0 ? head.slice(0, space) : head) + '...';
  }
  return s;
}

function formatChars(s: string, maxlen: number | null): string {
  return `'${truncate(s, maxlen).replaceAll("'", "\\'")}'`;
}

function scalarText(value: unknown): string | null {
  switch (typeof value) {
    case 'number':
      if (Number.isNaN(value)) return 'nan';
      if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
      return formatNumber(value);
    case 'bigint':
      return value.toString();
    case 'boolean':
      return value ? 'True' : 'False';
    case 'undefined':
      return 'None';
    case 'function':
      return `<function ${value.name || '<anonymous>'}>`;
    case 'symbol':
      return value.toString();
  }
  if (value === null) return 'None';
  return null;
}

type Shape =
  | { kind: 'list'; values: readonly unknown[] }
  | { kind: 'set'; values: readonly unknown[] }
  | { kind: 'dict'; keys: string[]; record: Record<string, unknown> }
  | { kind: 'text'; text: string };

/** What Python would hold for a JS object after a JSON round trip (or a readable stand-in). */
function shapeOf(obj: object): Shape {
  let value: unknown = obj;
  const toJSON = (obj as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') value = toJSON.call(obj, '');
  if (typeof value !== 'object' || value === null) {
    return typeof value === 'string'
      ? { kind: 'text', text: formatChars(value, null) }
      : { kind: 'text', text: scalarText(value) ?? 'None' };
  }
  if (Array.isArray(value)) return { kind: 'list', values: value };
  if (value instanceof Set) return { kind: 'set', values: [...value] };
  if (value instanceof Map) {
    const record: Record<string, unknown> = {};
    for (const [k, v] of value) record[String(k)] = v;
    return { kind: 'dict', keys: Object.keys(record), record };
  }
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    return { kind: 'text', text: `<${value.constructor.name}>` };
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).filter((k) => record[k] !== undefined);
  return { kind: 'dict', keys, record };
}

/**
 * Celery's `saferepr(value, maxlen)`, for values as Python would see them after JSON.
 *
 * @example
 * saferepr([2, 3], { tuple: true }) // '(2, 3)'
 * saferepr({ k: [1, 2], s: "it's" }) // "{'k': [1, 2], 's': 'it\\'s'}"
 */
export function saferepr(value: unknown, options: SafeReprOptions = {}): string {
  let maxlen = options.maxlen === undefined ? REPR_MAXLEN : options.maxlen;
  const maxlevels = options.maxlevels ?? 3;
  const asTuple = options.tuple === true && Array.isArray(value);

  // Frames form a chain, like saferepr's itertools.chain: a child runs, then its parent continues.
  const frames: Frame[] = [new ValuesFrame(null, [value], null)];
  const seen = new Set<object>();
  const ancestors: object[] = [];
  let level = 0;
  let out = '';

  const nextItem = (): Item | undefined => {
    while (frames.length > 0) {
      const item = (frames[frames.length - 1] as Frame).next();
      if (item !== undefined) return item;
      frames.pop();
    }
    return undefined;
  };

  let atRoot = true;
  for (;;) {
    const item = nextItem();
    if (item === undefined) return out;
    let token: string;
    let kind: 'lit' | 'key' | 'quoted' | 'text';
    if (item.kind === 'dirty') {
      seen.delete(ancestors.pop() as object);
      continue;
    }
    if (item.kind === 'lit') {
      level += item.dir;
      token = item.value;
      kind = 'lit';
    } else if (item.kind === 'key') {
      token = item.value;
      kind = 'key';
    } else {
      const v = item.value;
      if (typeof v === 'string') {
        token = v;
        kind = 'quoted';
      } else {
        const scalar = scalarText(v);
        if (scalar !== null) {
          token = scalar;
          kind = 'text';
        } else {
          const shape: Shape | { kind: 'tuple'; values: readonly unknown[] } =
            atRoot && asTuple ? { kind: 'tuple', values: v as unknown[] } : shapeOf(v as object);
          if (shape.kind === 'text') {
            token = shape.text;
            kind = 'text';
          } else {
            const [start, end] =
              shape.kind === 'tuple'
                ? [TUPLE_START, shape.values.length === 1 ? TUPLE_END_SV : TUPLE_END]
                : shape.kind === 'list'
                  ? [LIST_START, LIST_END]
                  : [DICT_START, DICT_END]; // dicts and sets both use braces
            if (shape.kind === 'set' && shape.values.length === 0) {
              token = 'set()';
              kind = 'text';
            } else if (maxlevels && level >= maxlevels) {
              token = `${start.value}...${end.value}`;
              kind = 'text';
            } else if (seen.has(v as object)) {
              token = `<Recursion on ${shape.kind} with id=${ancestors.indexOf(v as object)}>`;
              kind = 'text';
            } else {
              seen.add(v as object);
              ancestors.push(v as object);
              frames.push(
                shape.kind === 'dict'
                  ? new DictFrame(shape.keys, shape.record)
                  : new ValuesFrame(start, shape.values, end),
              );
              continue;
            }
          }
        }
      }
    }

    atRoot = false;
    if (maxlen !== null && maxlen <= 0) {
      out += ', ...';
      // Only the brackets still pending are written; the current token is dropped.
      for (let rest = nextItem(); rest !== undefined; rest = nextItem()) {
        if (rest.kind === 'lit' && !rest.truncate) out += rest.value;
      }
      return out;
    }
    let text: string;
    if (kind === 'lit') text = token;
    else if (kind === 'key' || kind === 'quoted') text = formatChars(token, maxlen);
    else text = truncate(token, maxlen);
    out += text;
    if (maxlen !== null) maxlen -= pyLen(text);
  }
}

/**
 * `argsrepr`: the positional args as a Python tuple, as Celery's `apply_async` writes it.
 *
 * @example
 * argsRepr([2, 3]) // '(2, 3)'
 * argsRepr([1])    // '(1,)'
 */
export function argsRepr(args: readonly unknown[]): string {
  return saferepr(args, { tuple: true });
}

/**
 * `kwargsrepr`: the keyword args as a Python dict.
 *
 * @example
 * kwargsRepr({ k: [1, 2] }) // "{'k': [1, 2]}"
 */
export function kwargsRepr(kwargs: Readonly<Record<string, unknown>>): string {
  return saferepr(kwargs);
}
