import { readFileSync } from 'node:fs';
import { saferepr } from '../../messages/repr.js';

/** A Python-style repr of an error, as Celery's events show exceptions: `ValueError('boom')`. */
export function exceptionRepr(error: Error): string {
  return `${error.name || 'Error'}(${saferepr(error.message)})`;
}

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** Celeriac's version, sent as `sw_ver` in worker events. */
export const SW_VERSION = readVersion();
