import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * RabbitMQ's own scripts. Debian's `/usr/sbin/rabbitmq-server` is a wrapper that, run as root,
 * switches to the `rabbitmq` user (its cookie, its log dir), so a test-owned node uses the scripts it
 * wraps; `CELERIAC_TEST_RABBITMQ_SBIN` names another directory holding them.
 */
function sbin(tool: 'rabbitmq-server' | 'rabbitmqctl'): string {
  const dirs = [process.env.CELERIAC_TEST_RABBITMQ_SBIN, '/usr/lib/rabbitmq/bin'].filter(
    (d): d is string => typeof d === 'string' && d !== '',
  );
  for (const d of dirs) if (existsSync(join(d, tool))) return join(d, tool);
  return tool; // from the PATH (a non-Debian install)
}

/** A free TCP port on 127.0.0.1 (not in rabbitmqctl's own distribution range 35672–35682). */
export async function sparePort(taken: readonly number[] = []): Promise<number> {
  for (;;) {
    const p = 20000 + Math.floor(Math.random() * 15000);
    if (taken.includes(p)) continue;
    if (await free(p)) return p;
  }
}

function free(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** CA, server certificate (CN/SAN 127.0.0.1 and localhost) and key, made with openssl in `dir`. */
export interface TestCerts {
  ca: string;
  cert: string;
  key: string;
}

export async function makeCerts(dir: string, label = 'ca'): Promise<TestCerts> {
  const f = (name: string) => join(dir, name);
  const ossl = (...args: string[]) => run('openssl', args, { timeout: 30_000 });
  await ossl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    `/CN=celeriac test ${label}`,
    '-keyout',
    f(`${label}.key`),
    '-out',
    f(`${label}.pem`),
  );
  await ossl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    f('server.key'),
    '-out',
    f('server.csr'),
  );
  writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await ossl(
    'x509',
    '-req',
    '-in',
    f('server.csr'),
    '-CA',
    f(`${label}.pem`),
    '-CAkey',
    f(`${label}.key`),
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    f('server.ext'),
    '-out',
    f('server.pem'),
  );
  return { ca: f(`${label}.pem`), cert: f('server.pem'), key: f('server.key') };
}

/**
 * A test-owned RabbitMQ node: its own node name (`celeriac-test-<rand>@localhost`), AMQP and
 * distribution ports, data, logs, config and Erlang cookie (HOME) in a temp dir, no plugins. The
 * shared RabbitMQ on 5672 is never touched. The ports stay the same across `stop()`/`start()`, and
 * durable queues with persistent messages survive a restart (the data dir is kept).
 *
 * @example
 * const node = await RabbitNode.create('restart');
 * await node.start();
 * const url = node.url(); // amqp://guest:guest@127.0.0.1:<port>/
 * await node.stop();
 * await node.remove();
 */
export class RabbitNode {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly nodename: string,
    readonly dir: string,
    /** Plain AMQP port (0 when the node listens on TLS only). */
    readonly port: number,
    readonly distPort: number,
    /** The TLS listener's port, if any. */
    readonly tlsPort: number | undefined,
    readonly certs: TestCerts | undefined,
  ) {}

  /** Prepares (does not start) a node; `tls` adds a TLS listener (and `tcp: false` drops the plain one). */
  static async create(label: string, options: { tls?: boolean; tcp?: boolean } = {}): Promise<RabbitNode> {
    const dir = mkdtempSync(join(tmpdir(), `celeriac-rmq-${label}-`));
    const nodename = `celeriac-test-${label}-${randomUUID().slice(0, 8)}@localhost`;
    const taken: number[] = [];
    const take = async () => {
      const p = await sparePort(taken);
      taken.push(p);
      return p;
    };
    const port = options.tcp === false ? 0 : await take();
    const distPort = await take();
    const tlsPort = options.tls ? await take() : undefined;
    const certs = options.tls ? await makeCerts(dir) : undefined;
    const conf = [
      port ? `listeners.tcp.local = 127.0.0.1:${port}` : 'listeners.tcp = none',
      'loopback_users = none',
      'log.console = false',
      'log.file.level = info',
      'disk_free_limit.absolute = 1MB',
    ];
    if (tlsPort && certs) {
      conf.push(
        `listeners.ssl.default = ${tlsPort}`,
        `ssl_options.cacertfile = ${certs.ca}`,
        `ssl_options.certfile = ${certs.cert}`,
        `ssl_options.keyfile = ${certs.key}`,
        'ssl_options.verify = verify_none',
        'ssl_options.fail_if_no_peer_cert = false',
      );
    }
    writeFileSync(join(dir, 'rabbitmq.conf'), `${conf.join('\n')}\n`);
    writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
    writeFileSync(join(dir, 'rabbitmq-env.conf'), '');
    mkdirSync(join(dir, 'home'));
    return new RabbitNode(nodename, dir, port, distPort, tlsPort, certs);
  }

  /** The environment of this node's scripts (rabbitmq-server and rabbitmqctl agree on the cookie through HOME). */
  private env(): NodeJS.ProcessEnv {
    const d = this.dir;
    return {
      PATH: process.env.PATH,
      HOME: join(d, 'home'),
      LANG: 'C.UTF-8',
      RABBITMQ_NODENAME: this.nodename,
      ...(this.port ? { RABBITMQ_NODE_PORT: String(this.port), RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1' } : {}),
      RABBITMQ_DIST_PORT: String(this.distPort),
      RABBITMQ_CONF_ENV_FILE: join(d, 'rabbitmq-env.conf'),
      RABBITMQ_CONFIG_FILE: join(d, 'rabbitmq.conf'),
      RABBITMQ_ADVANCED_CONFIG_FILE: join(d, 'advanced.config'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(d, 'enabled_plugins'),
      RABBITMQ_MNESIA_BASE: join(d, 'mnesia'),
      RABBITMQ_LOG_BASE: join(d, 'log'),
      RABBITMQ_PID_FILE: join(d, 'rabbitmq.pid'),
      RABBITMQ_ENABLED_PLUGINS: '',
    };
  }

  get running(): boolean {
    const c = this.child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  /** `amqp://guest:guest@127.0.0.1:<port>/` (the default vhost), with an optional query. */
  url(query: Record<string, string> = {}): string {
    const q = new URLSearchParams(query).toString();
    return `amqp://guest:guest@127.0.0.1:${this.port}/${q ? `?${q}` : ''}`;
  }

  /** Starts the node (in its own process group) and waits until `rabbitmqctl await_startup` says it is up. */
  async start(timeoutMs = 60_000): Promise<void> {
    if (this.running) return;
    const child = spawn(sbin('rabbitmq-server'), [], {
      cwd: this.dir,
      env: this.env(),
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (b: Buffer) => {
      stderr = (stderr + b.toString()).slice(-4000);
    });
    this.child = child;
    this.exited = new Promise((r) => child.once('exit', () => r()));
    const spawnError = new Promise<never>((_, reject) =>
      child.once('error', (err) => reject(new Error(`cannot run rabbitmq-server: ${String(err)}`))),
    );
    spawnError.catch(() => {});
    const end = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running) {
        await Promise.race([this.exited, spawnError]);
        throw new Error(
          `rabbitmq-server ${this.nodename} exited while starting: ${stderr.trim() || this.logTail()}`,
        );
      }
      try {
        // await_startup fails at once while the node has not registered with epmd yet: poll it.
        await this.ctl('await_startup', '--timeout', '30');
        return;
      } catch (err) {
        if (Date.now() > end) {
          await this.kill();
          throw new Error(`rabbitmq node ${this.nodename} did not start in ${timeoutMs} ms: ${String(err)}`);
        }
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Graceful `rabbitmqctl -n <node> stop`; resolves when the process is gone (SIGKILL of its group after 20 s). */
  async stop(): Promise<void> {
    if (!this.running) return;
    try {
      await this.ctl('stop');
    } catch {
      await this.kill();
      return;
    }
    const timer = setTimeout(() => void this.kill(), 20_000);
    await this.exited;
    clearTimeout(timer);
  }

  /** SIGKILL of the node's process group (what a crashed host looks like). */
  async kill(): Promise<void> {
    const pid = this.child?.pid;
    if (!this.running || pid === undefined) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      return; // already gone
    }
    await this.exited;
  }

  /** rabbitmqctl against this node. */
  async ctl(...args: string[]): Promise<string> {
    const { stdout } = await run(sbin('rabbitmqctl'), ['-q', '-n', this.nodename, ...args], {
      env: this.env(),
      timeout: 40_000,
    });
    return stdout;
  }

  /** Stops the node (SIGKILL) and deletes its directory. */
  async remove(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private logTail(): string {
    try {
      return readFileSync(join(this.dir, 'log', `${this.nodename}.log`), 'utf8').slice(-2000);
    } catch {
      return '(no log)';
    }
  }
}
