import { ConfigError } from './errors.js';

/** A duration: a number of milliseconds, or a string with a unit: `'500ms'`, `'10s'`, `'5m'`, `'2h'`, `'1d'`. */
export type Duration = number | `${number}${'ms' | 's' | 'm' | 'h' | 'd'}`;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PATTERN = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/;

/**
 * Parses a Duration into milliseconds. `field` names the option in the error message.
 *
 * @example
 * toMs('10s', 'timeout') // 10000
 */
export function toMs(value: Duration | string, field = 'duration'): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) {
      throw new ConfigError(field, `expected a non-negative number of milliseconds, got ${value}`);
    }
    return value;
  }
  const match = PATTERN.exec(value);
  if (!match) {
    throw new ConfigError(field, `expected a duration like 500ms, 10s, 5m, 2h or 1d, got '${value}'`);
  }
  return Number(match[1]) * (UNITS[match[2] as string] as number);
}

/** A Date, an ISO string or epoch milliseconds into epoch milliseconds. */
export function toEpochMs(value: Date | string | number, field: string): number {
  const ms = value instanceof Date ? value.getTime() : typeof value === 'number' ? value : Date.parse(value);
  if (!Number.isFinite(ms))
    throw new ConfigError(field, `expected a Date or an ISO date string, got '${String(value)}'`);
  return ms;
}
