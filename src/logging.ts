import { pino } from 'pino';

/** The logger shape Celeriac uses: pino's, so a user may pass their own pino instance. */
export interface Logger {
  trace(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

/** Keys whose values never reach a log line. */
const REDACT = ['password', 'pass', 'token', 'authorization', '*.password', '*.token', 'url.password'];

/**
 * Creates the default logger: pino, JSON lines to stderr, at `level` (default `info`), with
 * credentials redacted.
 */
export function createLogger(level = 'info'): Logger {
  return pino(
    { level, base: { name: 'celeriac' }, redact: { paths: REDACT, censor: '***' } },
    pino.destination(2),
  );
}
