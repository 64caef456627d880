import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The shared RabbitMQ of every machine and CI (tests fail, never skip, when it is missing). */
export const AMQP_HOST = process.env.CELERIAC_TEST_AMQP_HOST ?? '127.0.0.1';
export const AMQP_PORT = Number(process.env.CELERIAC_TEST_AMQP_PORT ?? 5672);

/** Runs rabbitmqctl; its failure (RabbitMQ or the tool missing) fails the test. */
export async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await run('rabbitmqctl', ['-q', ...args], { timeout: 30_000 });
  return stdout;
}

/** A fresh vhost for one test file, with guest allowed everything; `drop` deletes it. */
export async function freshVhost(label: string): Promise<{ vhost: string; drop: () => Promise<void> }> {
  const vhost = `celeriac-test-${label}-${randomUUID().slice(0, 8)}`;
  await rabbitmqctl('add_vhost', vhost);
  await rabbitmqctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
  return { vhost, drop: async () => void (await rabbitmqctl('delete_vhost', vhost)) };
}

export function amqpUrl(vhost: string, query: Record<string, string> = {}): string {
  const q = new URLSearchParams(query).toString();
  return `amqp://guest:guest@${AMQP_HOST}:${AMQP_PORT}/${encodeURIComponent(vhost)}${q ? `?${q}` : ''}`;
}

/** Closes the server side of the connection this test named (never anyone else's). */
export async function closeNamedConnection(vhost: string, connectionName: string): Promise<number> {
  const out = await rabbitmqctl('list_connections', '-p', vhost, 'pid', 'client_properties');
  let closed = 0;
  for (const line of out.split('\n')) {
    if (!line.includes(`"${connectionName}"`)) continue;
    const pid = line.split('\t')[0]?.trim();
    if (!pid) continue;
    await rabbitmqctl('close_connection', pid, 'celeriac fault test');
    closed += 1;
  }
  return closed;
}

/** Queues of a vhost with their arguments, as rabbitmqctl lists them. */
export async function listQueues(
  vhost: string,
): Promise<Array<{ name: string; durable: boolean; args: string }>> {
  const out = await rabbitmqctl('list_queues', '-p', vhost, 'name', 'durable', 'arguments');
  return out
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('name\t'))
    .map((l) => {
      const [name = '', durable = '', args = ''] = l.split('\t');
      return { name, durable: durable === 'true', args };
    });
}
