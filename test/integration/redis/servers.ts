import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Test-owned redis-server processes on spare ports in a temp dir (for Cluster, Sentinel, TLS and
 * restart tests; the shared Redis on 6379 is never touched by these). Each is stopped by its pid.
 */
export class RedisServer {
  private child: ChildProcess | undefined;
  exited: Promise<void> = Promise.resolve();

  constructor(
    readonly port: number,
    readonly dir: string,
    private readonly args: string[],
    private readonly ping: string[] = [],
  ) {}

  async start(): Promise<void> {
    const child = spawn('redis-server', [...this.args], {
      cwd: this.dir,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    this.child = child;
    this.exited = new Promise((r) => child.once('exit', () => r()));
    const end = Date.now() + 10_000;
    for (;;) {
      try {
        const { stdout } = await run('redis-cli', ['-p', String(this.port), ...this.ping, 'PING'], {
          timeout: 2000,
        });
        if (stdout.includes('PONG')) return;
      } catch {
        // not up yet
      }
      if (Date.now() > end) throw new Error(`redis-server on port ${this.port} did not start`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGKILL (no shutdown save) or SIGTERM; resolves when the process is gone. */
  async stop(signal: 'SIGKILL' | 'SIGTERM' = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    try {
      process.kill(child.pid, signal);
    } catch {
      return; // already gone
    }
    await this.exited;
  }
}

/** A port p such that p and p + 10000 (Cluster bus) are free. */
export async function sparePort(): Promise<number> {
  for (;;) {
    const p = 20000 + Math.floor(Math.random() * 20000);
    if ((await free(p)) && (await free(p + 10000))) return p;
  }
}

function free(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export function tempDir(label: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `celeriac-${label}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** One standalone server; `extra` adds flags (e.g. `--appendonly yes`). */
export async function startStandalone(
  label: string,
  extra: string[] = [],
): Promise<{ server: RedisServer; remove: () => void }> {
  const { dir, remove } = tempDir(label);
  const port = await sparePort();
  const server = new RedisServer(port, dir, [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--dir',
    dir,
    ...extra,
  ]);
  await server.start();
  return { server, remove };
}

/** A 3-master Redis Cluster (no replicas) on spare ports. */
export async function startCluster(): Promise<{ ports: number[]; stop: () => Promise<void> }> {
  const { dir, remove } = tempDir('cluster');
  const servers: RedisServer[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await sparePort();
    const nodeDir = join(dir, String(port));
    await run('mkdir', ['-p', nodeDir]);
    const s = new RedisServer(port, nodeDir, [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      'nodes.conf',
      '--cluster-node-timeout',
      '5000',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      nodeDir,
    ]);
    await s.start();
    servers.push(s);
  }
  const ports = servers.map((s) => s.port);
  await run(
    'redis-cli',
    [
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ],
    {
      timeout: 30_000,
    },
  );
  const end = Date.now() + 20_000;
  for (const p of ports) {
    for (;;) {
      const { stdout } = await run('redis-cli', ['-p', String(p), 'CLUSTER', 'INFO']);
      if (stdout.includes('cluster_state:ok')) break;
      if (Date.now() > end) throw new Error('cluster did not become ok');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    ports,
    stop: async () => {
      await Promise.all(servers.map((s) => s.stop('SIGKILL')));
      remove();
    },
  };
}

/** A master and one Sentinel monitoring it as `mymaster`. */
export async function startSentinel(): Promise<{
  sentinelPort: number;
  masterPort: number;
  stop: () => Promise<void>;
}> {
  const master = await startStandalone('sentinel-master');
  const { dir, remove } = tempDir('sentinel');
  const port = await sparePort();
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor mymaster 127.0.0.1 ${master.server.port} 1`,
      'sentinel down-after-milliseconds mymaster 2000',
      '',
    ].join('\n'),
  );
  const sentinel = new RedisServer(port, dir, [conf, '--sentinel']);
  await sentinel.start();
  return {
    sentinelPort: port,
    masterPort: master.server.port,
    stop: async () => {
      await sentinel.stop('SIGKILL');
      await master.server.stop('SIGKILL');
      remove();
      master.remove();
    },
  };
}

/** A master, a replica and one Sentinel (quorum 1, fast failover), for failover tests. */
export async function startSentinelWithReplica(): Promise<{
  sentinelPort: number;
  master: RedisServer;
  replica: RedisServer;
  stop: () => Promise<void>;
}> {
  const m = await startStandalone('failover-master');
  const r = await startStandalone('failover-replica', []);
  await run('redis-cli', ['-p', String(r.server.port), 'REPLICAOF', '127.0.0.1', String(m.server.port)]);
  const { dir, remove } = tempDir('failover-sentinel');
  const port = await sparePort();
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor mymaster 127.0.0.1 ${m.server.port} 1`,
      'sentinel down-after-milliseconds mymaster 1000',
      'sentinel failover-timeout mymaster 5000',
      '',
    ].join('\n'),
  );
  const sentinel = new RedisServer(port, dir, [conf, '--sentinel']);
  await sentinel.start();
  return {
    sentinelPort: port,
    master: m.server,
    replica: r.server,
    stop: async () => {
      await sentinel.stop('SIGKILL');
      await m.server.stop('SIGKILL');
      await r.server.stop('SIGKILL');
      remove();
      m.remove();
      r.remove();
    },
  };
}
