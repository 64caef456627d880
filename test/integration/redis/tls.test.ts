import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTransport } from '../../../src/brokers/redis/index.js';
import type { Delivery } from '../../../src/brokers/transport.js';
import { createResultSink } from '../../../src/results/redis/index.js';
import { messageId, testMessage } from '../../helpers/messages.js';
import { RedisServer, sparePort, tempDir } from './servers.js';

const run = promisify(execFile);

/** rediss:// against a test-owned redis-server with --tls-port (Debian's redis is built with TLS). */
let server: RedisServer | undefined;
let dir: { dir: string; remove: () => void } | undefined;
let port = 0;

beforeAll(async () => {
  dir = tempDir('tls');
  const d = dir.dir;
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-keyout',
    join(d, 'key.pem'),
    '-out',
    join(d, 'cert.pem'),
  ]);
  port = await sparePort();
  server = new RedisServer(
    port,
    d,
    [
      '--port',
      '0',
      '--tls-port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--tls-cert-file',
      join(d, 'cert.pem'),
      '--tls-key-file',
      join(d, 'key.pem'),
      '--tls-ca-cert-file',
      join(d, 'cert.pem'),
      '--tls-auth-clients',
      'no',
      '--save',
      '',
      '--dir',
      d,
    ],
    ['--tls', '--cacert', join(d, 'cert.pem')],
  );
  await server.start();
}, 30_000);
afterAll(async () => {
  await server?.stop('SIGKILL');
  dir?.remove();
});

describe('rediss:// (TLS)', () => {
  it('publishes, consumes and stores results over TLS, verifying the server with ssl_ca_certs', async () => {
    const ca = join(dir?.dir as string, 'cert.pem');
    const url = new URL(`rediss://127.0.0.1:${port}/0?ssl_ca_certs=${encodeURIComponent(ca)}`);
    const t = createTransport(url, {});
    const sink = createResultSink(url, {});
    try {
      const m = testMessage();
      await t.publish([{ queue: 'tls', message: m }]);
      const got: Delivery[] = [];
      await t.consume(['tls'], (d) => got.push(d), { prefetch: 1 });
      while (got.length < 1) await new Promise((r) => setTimeout(r, 20));
      expect(messageId(got[0]?.message)).toBe(messageId(m));
      await t.ack(got[0] as Delivery);
      const id = messageId(m);
      const waiting = sink.wait(id, {});
      await sink.store(
        { status: 'SUCCESS', result: 5, traceback: null, children: [], date_done: null, task_id: id },
        { expiresMs: 60_000 },
      );
      expect((await waiting).result).toBe(5);
    } finally {
      await t.close();
      await sink.close();
    }
  });

  it('refuses a server certificate it cannot verify (no CA given)', async () => {
    const t = createTransport(new URL(`rediss://127.0.0.1:${port}/0`), {});
    try {
      await expect(t.connect()).rejects.toMatchObject({ code: 'ERR_CONNECTION' });
      expect(t.health().status).toBe('degraded');
    } finally {
      await t.close();
    }
  });
});
