import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AmqpTransport, createTransport } from '../../../src/brokers/amqp/index.js';
import type { Delivery } from '../../../src/brokers/transport.js';
import { ConfigError, ConnectionError } from '../../../src/errors.js';
import { Celeriac, type Logger } from '../../../src/index.js';
import { messageId, testMessage } from '../../helpers/messages.js';
import { makeCerts, RabbitNode } from './servers.js';

/**
 * amqps:// against a test-owned RabbitMQ node with a TLS listener only (`listeners.tcp = none`),
 * its server certificate signed by a CA made here with openssl.
 */
const USER = 'celeriac';
const PASSWORD = 'tls-s3cret-Pw';
let node: RabbitNode;
let ca = '';
beforeAll(async () => {
  node = await RabbitNode.create('tls', { tls: true, tcp: false });
  ca = node.certs?.ca ?? '';
  await node.start();
  await node.ctl('add_user', USER, PASSWORD);
  await node.ctl('set_permissions', '-p', '/', USER, '.*', '.*', '.*');
}, 60_000);
afterAll(async () => {
  await node?.remove();
});

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

function amqps(query: Record<string, string> = {}): string {
  const q = new URLSearchParams(query).toString();
  return `amqps://${USER}:${PASSWORD}@127.0.0.1:${node.tlsPort}/${q ? `?${q}` : ''}`;
}

/** Every log line, to check that none carries the password. */
function capture(lines: string[]): Logger {
  const keep = (obj: object, msg?: string): void => {
    lines.push(`${msg ?? ''} ${JSON.stringify(obj)}`);
  };
  const logger: Logger = {
    trace: keep,
    debug: keep,
    info: keep,
    warn: keep,
    error: keep,
    child: () => logger,
  };
  return logger;
}

describe('amqps:// (TLS)', () => {
  it('runs a task round trip (rpc:// results on the same TLS connection), verifying the server with ?ssl_ca_certs=', async () => {
    const app = new Celeriac({
      broker: amqps({ ssl_ca_certs: ca, connection_name: 'celeriac-tls-app' }),
      results: 'rpc://',
      logger: 'silent',
    });
    cleanup.push(() => app.close());
    const add = app.task('tls.add', (a: number, b: number) => a + b, { queue: 'tls' });
    await app.worker({ queues: ['tls'], concurrency: 2 }).start();
    expect(await (await add.delay(2, 3)).get({ timeout: '10s' })).toBe(5);
    const connections = await node.ctl(
      'list_connections',
      'user',
      'ssl',
      'ssl_protocol',
      'client_properties',
    );
    const ours = connections.split('\n').filter((l) => l.includes('celeriac-tls-app'));
    expect(ours.length).toBeGreaterThan(0);
    for (const line of ours) expect(line).toMatch(new RegExp(`^${USER}\\ttrue\\ttlsv1\\.[23]\\t`));
    console.log(`[tls] round trip over ${ours[0]?.split('\t')[2]}`);
    expect((await app.health()).status).toBe('healthy');
  });

  it('brokerOptions.tls: { ca } (PEM contents) works too', async () => {
    const t = createTransport(new URL(amqps()), { options: { tls: { ca: readFileSync(ca) } } });
    cleanup.push(() => t.close());
    expect(t).toBeInstanceOf(AmqpTransport);
    await t.connect();
    const m = testMessage();
    await t.publish([{ queue: 'tls.raw', message: m }]);
    const got: Delivery[] = [];
    await t.consume(['tls.raw'], (d) => got.push(d), { prefetch: 1 });
    const end = Date.now() + 10_000;
    while (got.length < 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(messageId(got[0]?.message)).toBe(messageId(m));
    await t.ack(got[0] as Delivery);
  });

  it('a CA that did not sign the server certificate: a clear ConnectionError at once, no password anywhere', async () => {
    const otherDir = join(node.dir, 'other-ca');
    mkdirSync(otherDir);
    const other = await makeCerts(otherDir, 'other');
    for (const [label, query] of [
      ['wrong CA', { ssl_ca_certs: other.ca }],
      ['no CA (system store)', {}],
    ] as const) {
      const lines: string[] = [];
      const app = new Celeriac({ broker: amqps(query), logger: capture(lines) });
      cleanup.push(() => app.close());
      const started = Date.now();
      const err = await app.transport().catch((e: unknown) => e);
      const tookMs = Date.now() - started;
      expect(err).toBeInstanceOf(ConnectionError);
      const message = String((err as Error).message);
      console.log(`[tls] ${label}: rejected in ${tookMs} ms: ${message}`);
      expect(message).toContain(`amqps://${USER}:***@127.0.0.1:${node.tlsPort}/`);
      expect(message).toMatch(
        /TLS: the server's certificate was not verified \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)/,
      );
      expect(message).toMatch(/\?ssl_ca_certs=<PEM file> or brokerOptions\.tls\.ca/);
      expect(tookMs).toBeLessThan(5000); // not publishTimeout (30 s): retrying cannot fix a certificate
      const everything = [message, String((err as Error).stack), ...lines].join('\n');
      expect(everything).not.toContain(PASSWORD);
      // The publish path says the same (the app retries the connection on the next call).
      const sent = await app.sendTask('tls.add', [1, 2], {}, { queue: 'tls' }).catch((e: unknown) => e);
      expect(sent).toBeInstanceOf(ConnectionError);
      expect(String((sent as Error).message)).not.toContain(PASSWORD);
    }
  });

  it('?ssl_cert_reqs=none skips verification (no CA needed)', async () => {
    const t = createTransport(new URL(amqps({ ssl_cert_reqs: 'none' })), {});
    cleanup.push(() => t.close());
    await t.connect();
    expect(t.health()).toEqual({ status: 'healthy' });
  });

  it('refuses TLS options it cannot use with ConfigError naming them', () => {
    expect(() =>
      createTransport(new URL(`amqp://guest:guest@127.0.0.1:5672/?ssl_ca_certs=${ca}`), {}),
    ).toThrow(/\?ssl_ca_certs: TLS options need an amqps:\/\/ URL/);
    expect(() =>
      createTransport(new URL('amqp://guest:guest@127.0.0.1:5672/'), { options: { tls: { ca: 'x' } } }),
    ).toThrow(ConfigError);
    expect(() => createTransport(new URL(amqps({ ssl_ca_certs: '/nonexistent/ca.pem' })), {})).toThrow(
      /\?ssl_ca_certs: cannot read '\/nonexistent\/ca\.pem'/,
    );
    expect(() => createTransport(new URL(amqps()), { options: { tls: { cafile: ca } } })).toThrow(
      /brokerOptions\.tls\.cafile: unknown option/,
    );
    expect(() => createTransport(new URL(amqps({ ssl_cert_reqs: 'maybe' })), {})).toThrow(
      /expected none, optional or required/,
    );
  });
});
