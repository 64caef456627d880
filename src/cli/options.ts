import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';

/**
 * Option parsers shared by the commands. Each throws commander's InvalidArgumentError, which
 * commander prints as one line naming the flag (exit 2).
 */

/** An integer within bounds. */
export function integer(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(
        max === Number.MAX_SAFE_INTEGER
          ? `expected an integer ≥ ${min}.`
          : `expected an integer from ${min} to ${max}.`,
      );
    }
    return n;
  };
}

/** `--prefetch`: `auto`, or an integer ≥ 0. */
export function prefetchCount(value: string): number | 'auto' {
  if (value.trim() === 'auto') return 'auto';
  try {
    return integer(0)(value);
  } catch {
    throw new InvalidArgumentError("expected 'auto' or an integer ≥ 0.");
  }
}

const DURATION = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A duration on the command line: a bare number is seconds, as in Celery's CLI (DESIGN.md §2,
 * Units); a number with a unit (`500ms`, `10s`, `5m`, `2h`, `1d`) is taken as written. Returns ms.
 *
 * @example
 * seconds('10') // 10000
 * seconds('250ms') // 250
 */
export function seconds(value: string): number {
  const match = DURATION.exec(value);
  if (!match)
    throw new InvalidArgumentError(
      'expected seconds (e.g. 10 or 1.5) or a duration with a unit (500ms, 10s, 5m).',
    );
  return Number(match[1]) * (UNIT_MS[match[2] ?? 's'] as number);
}

/** A JSON value of the given shape. */
export function json(shape: 'array' | 'object'): (value: string) => unknown[] | Record<string, unknown> {
  return (value) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch (err) {
      throw new InvalidArgumentError(`expected JSON (${(err as Error).message}).`);
    }
    const ok =
      shape === 'array'
        ? Array.isArray(parsed)
        : parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed);
    if (!ok)
      throw new InvalidArgumentError(
        shape === 'array' ? 'expected a JSON array, e.g. [2, 3].' : 'expected a JSON object, e.g. {"x": 1}.',
      );
    return parsed as unknown[] | Record<string, unknown>;
  };
}

/** A comma-separated list of non-empty names (`a,b`), repeatable. */
export function list(value: string, previous: string[] = []): string[] {
  const items = value.split(',').map((s) => s.trim());
  if (items.some((s) => s === ''))
    throw new InvalidArgumentError('expected comma-separated names, e.g. celery,emails.');
  return [...previous, ...items];
}

/** Log levels accepted by `--loglevel` (pino's). */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** Options every broker-facing command takes: `--app FILE`, or `--broker URL [--results URL]`. */
export interface ConnectionFlags {
  app?: string;
  broker?: string;
  results?: string;
}

/** Adds `--app`, `--broker` and `--results` (the environment is the fallback). */
export function connectionOptions(command: Command): Command {
  return command
    .addOption(
      new Option(
        '-A, --app <file>',
        'app module: its `app` export (or default export) is the Celeriac app',
      ).conflicts(['broker', 'results']),
    )
    .addOption(
      new Option(
        '-b, --broker <url>',
        'broker URL, e.g. redis://localhost:6379/0 (default: $CELERIAC_BROKER_URL)',
      ),
    )
    .addOption(new Option('-r, --results <url>', 'result store URL (default: $CELERIAC_RESULTS_URL)'));
}
