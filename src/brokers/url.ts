import { ConfigError } from '../errors.js';

/** Parses a URL, naming the config field in the error (and never echoing credentials). */
export function parseUrl(url: string, field: string): URL {
  try {
    return new URL(url);
  } catch {
    throw new ConfigError(field, `not a valid URL: '${redactUrl(url)}'`);
  }
}

/**
 * Removes credentials from a URL for logs and errors: `redis://:secret@host` → `redis://:***@host`.
 *
 * @example
 * redactUrl('amqp://guest:guest@localhost:5672//') // 'amqp://guest:***@localhost:5672//'
 */
export function redactUrl(url: string): string {
  return url.replace(/(\/\/[^/:@]*:)[^@/]*@/, '$1***@').replace(/(\/\/)([^/:@]+)@/, '$1***@');
}
