import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { lines, runCli } from './helpers.js';

const fixture = (name: string) => `test/unit/cli/fixtures/${name}`;

beforeEach(() => {
  // The environment is a fallback for --broker/--results: start each test without it.
  vi.stubEnv('CELERIAC_BROKER_URL', '');
  vi.stubEnv('CELERIAC_RESULTS_URL', '');
});
afterEach(() => {
  vi.unstubAllEnvs();
});

/** A usage error: exit 2 and exactly one line on stderr, nothing on stdout. */
function expectUsageError(r: { code: number; stdout: string; stderr: string }, pattern: RegExp): void {
  expect(r.code).toBe(2);
  expect(lines(r.stderr)).toHaveLength(1);
  expect(r.stderr.trim()).toMatch(pattern);
  expect(r.stdout).toBe('');
}

describe('celeriac --help', () => {
  it('lists every command', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const command of ['demo', 'worker', 'call', 'dead', 'purge']) expect(r.stdout).toContain(command);
  });

  it.each([
    [
      ['demo', '--help'],
      ['--json', '--concurrency'],
    ],
    [
      ['worker', '--help'],
      ['--app', '--broker', '--results', '--queues', '--concurrency', '--name', '--loglevel'],
    ],
    [
      ['call', '--help'],
      ['--args', '--kwargs', '--countdown', '--queue', '--priority', '--wait', '--timeout', '--broker'],
    ],
    [
      ['dead', '--help'],
      ['list', 'replay', 'purge'],
    ],
    [
      ['dead', 'list', '--help'],
      ['--limit', '--json', '--app'],
    ],
    [
      ['dead', 'replay', '--help'],
      ['--id', '--broker'],
    ],
    [['dead', 'purge', '--help'], ['--force']],
    [
      ['purge', '--help'],
      ['--force', '--app', '--broker'],
    ],
  ])('%j shows the command’s flags', async (argv, flags) => {
    const r = await runCli(argv);
    expect(r.code).toBe(0);
    for (const flag of flags) expect(r.stdout).toContain(flag);
  });

  it('prints the help with no arguments', async () => {
    const r = await runCli([]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: celeriac');
  });
});

describe('usage errors: one line, exit 2', () => {
  it('an unknown flag', async () => {
    expectUsageError(await runCli(['worker', '--bogus']), /^error: unknown option '--bogus'/);
  });

  it('an unknown command', async () => {
    expectUsageError(await runCli(['frobnicate']), /^error: unknown command 'frobnicate'/);
  });

  it('a missing argument', async () => {
    expectUsageError(await runCli(['call']), /^error: missing required argument 'name'/);
  });

  it('--args that is not a JSON array', async () => {
    expectUsageError(
      await runCli(['call', 'tasks.add', '--args', '{"a":1}', '--broker', 'redis://x']),
      /--args.*JSON array/,
    );
    expectUsageError(
      await runCli(['call', 'tasks.add', '--args', '[2,', '--broker', 'redis://x']),
      /--args.*expected JSON/,
    );
  });

  it('a priority outside 0–9, a bad countdown, a bad concurrency', async () => {
    expectUsageError(await runCli(['call', 't', '--priority', '10']), /--priority.*from 0 to 9/);
    expectUsageError(await runCli(['call', 't', '--countdown', 'later']), /--countdown.*expected seconds/);
    expectUsageError(await runCli(['worker', '--concurrency', '0']), /--concurrency.*≥ 1/);
    expectUsageError(await runCli(['worker', '--loglevel', 'loud']), /--loglevel.*Allowed choices/);
  });

  it('--app together with --broker', async () => {
    expectUsageError(
      await runCli(['call', 't', '--app', 'x.ts', '--broker', 'redis://x']),
      /--app.*cannot be used with.*--broker/,
    );
  });

  it('no broker at all points at --broker, the environment and the demo', async () => {
    expectUsageError(
      await runCli(['call', 'tasks.add']),
      /no broker: give --app FILE or --broker URL.*CELERIAC_BROKER_URL.*celeriac demo/,
    );
  });

  it('a broker URL with an unknown scheme', async () => {
    expectUsageError(
      await runCli(['dead', 'list', 'celery', '--broker', 'carrier-pigeon://coop']),
      /unsupported scheme 'carrier-pigeon:\/\/'/,
    );
  });
});

describe('app files', () => {
  it('a missing file', async () => {
    expectUsageError(
      await runCli(['worker', '--app', fixture('nope.ts')]),
      /^error: app file not found: .*nope\.ts$/,
    );
  });

  it('a module without an app export names what it found', async () => {
    expectUsageError(
      await runCli(['worker', '--app', fixture('no-app.ts')]),
      /no `app` export and no default export \(its exports: answer, helper\)/,
    );
  });

  it('an app export that is not a Celeriac instance says what it is', async () => {
    expectUsageError(
      await runCli(['worker', '--app', fixture('not-celeriac.ts')]),
      /the `app` export is an object of class Object, expected a Celeriac instance/,
    );
  });

  it('a module that throws while loading: its first line only', async () => {
    expectUsageError(
      await runCli(['call', 't', '--app', fixture('throws.ts')]),
      /^error: cannot load app file .*throws\.ts: boom while importing$/,
    );
  });

  it('takes the default export when there is no `app` export (and refuses its memory:// broker)', async () => {
    expectUsageError(
      await runCli(['worker', '--app', fixture('memory-app.ts')]),
      /broker memory:\/\/cli-unit is not shared between processes/,
    );
  });
});

describe('memory:// across processes is refused, with the reason', () => {
  const why = /is not shared between processes \(memory:\/\/ lives inside one process\).*celeriac demo/;

  it.each([
    [['worker', '--broker', 'memory://']],
    [['call', 'tasks.add', '--broker', 'memory://']],
    [['dead', 'list', 'celery', '--broker', 'memory://']],
    [['dead', 'replay', 'celery', '--broker', 'memory://']],
    [['dead', 'purge', 'celery', '--broker', 'memory://', '--force']],
    [['purge', 'celery', '--broker', 'memory://', '--force']],
  ])('%j', async (argv) => {
    expectUsageError(await runCli(argv), why);
  });

  it('from CELERIAC_BROKER_URL too', async () => {
    vi.stubEnv('CELERIAC_BROKER_URL', 'memory://');
    expectUsageError(await runCli(['call', 'tasks.add']), why);
  });
});
