/**
 * Loads the captured Celery wire fixtures (`../shared/celery-wire/fixtures/*.json`, beside the
 * repository; CI checks shared/ out in the same place) and finds the messages in them.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/**
 * shared/celery-wire: `CELERIAC_WIRE_DIR` if set, else `../shared/celery-wire` beside the repository
 * (where CI lays shared/), else the workspace's `/work/shared/celery-wire` (a clone made elsewhere).
 */
export const wireDir = findWireDir();
export const fixturesDir = path.join(wireDir, 'fixtures');

function findWireDir(): string {
  const candidates = [
    process.env.CELERIAC_WIRE_DIR,
    path.resolve(repoRoot, '..', 'shared', 'celery-wire'),
    '/work/shared/celery-wire',
  ].filter((c): c is string => Boolean(c));
  const found = candidates.find((c) => existsSync(path.join(c, 'fixtures')));
  if (!found) {
    throw new Error(
      `Celery wire fixtures not found (looked in ${candidates.join(', ')}); set CELERIAC_WIRE_DIR to shared/celery-wire`,
    );
  }
  return found;
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** Fixture file names (without `.json`), sorted. */
export function fixtureNames(prefix = ''): string[] {
  return readdirSync(fixturesDir)
    .filter((f) => f.endsWith('.json') && f.startsWith(prefix))
    .map((f) => f.slice(0, -5))
    .sort();
}

/** One fixture, parsed. */
export function loadFixture(name: string): JsonObject {
  return JSON.parse(readFileSync(path.join(fixturesDir, `${name}.json`), 'utf8')) as JsonObject;
}

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Every object in `value` (depth first) with its path, e.g. `messages[0]`, `queues.celery3[1]`. */
export function walk(value: Json, at = ''): { path: string; node: JsonObject }[] {
  const out: { path: string; node: JsonObject }[] = [];
  const visit = (v: Json, p: string): void => {
    if (Array.isArray(v)) {
      for (const [i, item] of v.entries()) visit(item, `${p}[${i}]`);
    } else if (isObject(v)) {
      out.push({ path: p, node: v });
      for (const [k, child] of Object.entries(v)) visit(child, p ? `${p}.${k}` : k);
    }
  };
  visit(value, at);
  return out;
}

/** A kombu Redis envelope captured as raw text (LRANGE / PUBLISH), with where it was found. */
export interface RawEnvelope {
  fixture: string;
  path: string;
  raw: string;
  envelope: JsonObject;
  /** True when it carries a protocol v2 task (a `task` header). */
  isTask: boolean;
}

/** Every `{raw: "<envelope JSON>", envelope: {...}}` node of the redis-* fixtures. */
export function redisEnvelopes(): RawEnvelope[] {
  const out: RawEnvelope[] = [];
  for (const fixture of fixtureNames('redis-')) {
    for (const { path: p, node } of walk(loadFixture(fixture))) {
      if (typeof node.raw === 'string' && isObject(node.envelope)) {
        const headers = node.envelope.headers;
        out.push({
          fixture,
          path: p,
          raw: node.raw,
          envelope: node.envelope,
          isTask: isObject(headers) && 'task' in headers,
        });
      }
    }
  }
  return out;
}

/** A task message read from RabbitMQ with basic_get. */
export interface AmqpMessage {
  fixture: string;
  path: string;
  properties: JsonObject;
  headers: JsonObject;
  body: string;
  deliveryInfo: JsonObject;
}

/** Every basic_get capture in the amqp-* fixtures whose application headers carry a `task`. */
export function amqpTaskMessages(): AmqpMessage[] {
  const out: AmqpMessage[] = [];
  for (const fixture of fixtureNames('amqp-')) {
    for (const { path: p, node } of walk(loadFixture(fixture))) {
      const props = node.properties;
      if (!isObject(props) || typeof node.body_raw_utf8 !== 'string') continue;
      const headers = props.application_headers;
      if (!isObject(headers) || !('task' in headers)) continue;
      out.push({
        fixture,
        path: p,
        properties: props,
        headers,
        body: node.body_raw_utf8,
        deliveryInfo: isObject(node.delivery_info) ? node.delivery_info : {},
      });
    }
  }
  return out;
}

/** Result metas captured raw (`celery-task-meta-*` GET values). */
export function taskMetas(): { fixture: string; path: string; key: string; raw: string }[] {
  const out: { fixture: string; path: string; key: string; raw: string }[] = [];
  for (const fixture of fixtureNames('redis-')) {
    for (const { path: p, node } of walk(loadFixture(fixture))) {
      if (
        typeof node.raw === 'string' &&
        typeof node.redis_key === 'string' &&
        node.redis_key.startsWith('celery-task-meta-')
      ) {
        out.push({ fixture, path: p, key: node.redis_key, raw: node.raw });
      }
    }
  }
  return out;
}
