/**
 * Canvas and events across languages, over real Redis (db 14): a Python Celery worker consumes the
 * default queue (`celery-<run>`), a Celeriac worker in this process consumes `ts-<run>` only. Chains and links that Python sends
 * continue through steps that run on Celeriac (the Celeriac worker publishes the next step, the
 * callbacks and the errbacks as Celery does), and a Celeriac event reaches a Python subscriber (by
 * task name) and a TypeScript subscriber with one publish.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFailed } from 'vitest';
import type { TaskContext } from '../../../src/index.js';
import { Celeriac } from '../../../src/index.js';
import type { Json } from '../../fixtures.js';
import { sleep } from '../../helpers/app.js';
import {
  deleteRunKeys,
  type PeerUrls,
  PeerWorker,
  peerResult,
  peerScript,
  runSuffix,
} from '../../helpers/peer.js';
import { inspector, redisUrl } from './helpers.js';

// A db of its own (Python Celery has no key prefix). Queue names are unique to this run, and nothing
// is flushed: two runs of this file (two engineers, CI) may share the db at the same time.
const DB = 14;
const URL = redisUrl({ db: DB });
const suffix = runSuffix();
/** Stands for Celery's default `celery` queue in this run: the Python worker's queue, everyone's default. */
const PY = `celery-${suffix}`;
/** The Celeriac worker's only queue. */
const TS = `ts-${suffix}`;
const urls: PeerUrls = { broker: URL, backend: URL, defaultQueue: PY };

interface Run {
  id: string;
  name: string;
  args: readonly unknown[];
  kwargs: Readonly<Record<string, unknown>>;
  headers: Readonly<Record<string, unknown>>;
  event: string | null;
}

const runs: Run[] = [];
const admin: Redis = inspector(DB);
let app: Celeriac;
let python: PeerWorker;

function record(ctx: TaskContext): void {
  runs.push({
    id: ctx.id,
    name: ctx.name,
    args: ctx.args,
    kwargs: ctx.kwargs,
    headers: ctx.headers,
    event: ctx.event,
  });
}

class ValueError extends Error {
  override name = 'ValueError';
}

beforeAll(async () => {
  await admin.connect().catch((err: Error) => {
    throw new Error(`Redis at ${URL} is not reachable (these tests need it): ${err.message}`);
  });
  python = await PeerWorker.start(urls, { concurrency: 2 });
  app = new Celeriac({
    broker: URL,
    results: URL,
    logger: 'silent',
    defaultQueue: PY,
    brokerOptions: { pollInterval: 50 },
  });
  // No `queue` option: a step that names no queue goes to the default queue (the Python worker), as in Celery.
  app.task(
    'tasks.add',
    (ctx: TaskContext, x: number, y: number) => {
      record(ctx);
      return x + y;
    },
    { bind: true },
  );
  app.task(
    'tasks.mul',
    (ctx: TaskContext, x: number, y: number) => {
      record(ctx);
      return x * y;
    },
    { bind: true },
  );
  app.task(
    'tasks.fail',
    (ctx: TaskContext, message: unknown = 'boom') => {
      record(ctx);
      throw new ValueError(String(message));
    },
    { bind: true },
  );
  // Known to Celeriac only (Python's worker does not have them).
  app.task(
    'ts.on_error',
    (ctx: TaskContext, failedId: string) => {
      record(ctx);
      return { errback_for: failedId };
    },
    { bind: true, queue: TS },
  );
  app.task(
    'ts.on_signup',
    (ctx: TaskContext, payload: Record<string, unknown>) => {
      record(ctx);
      return { seen: payload };
    },
    { bind: true, queue: TS },
  );
  await app.worker({ queues: [TS], concurrency: 4 }).start();
});

afterAll(async () => {
  await app?.close();
  await python?.stop();
  if (admin.status === 'ready') await deleteRunKeys(admin, suffix);
  admin.disconnect();
});

beforeEach(() => {
  runs.length = 0;
  onTestFailed(() => {
    console.error(`Celeriac runs in this test:\n${JSON.stringify(runs, null, 1)}`);
    console.error(`Python worker output (tail):\n${python?.tail(60)}`);
  });
});

/** Python's `celery-task-meta-<id>`, as stored. */
async function meta(id: string): Promise<Record<string, Json>> {
  const raw = await admin.get(`celery-task-meta-${id}`);
  if (raw === null) throw new Error(`no result stored for ${id}`);
  return JSON.parse(raw) as Record<string, Json>;
}

// Builds a chain in Python from [name, args, queue|null] steps; prints its result and every step's id.
// With ARGS.failing_step, waits for that step instead, then reports what the chain's own get() raises.
const CHAIN = `
from celery import chain
sigs = []
for name, args, queue in ARGS['steps']:
    s = app.signature(name, args=args)
    if queue:
        s = s.set(queue=queue)
    sigs.append(s)
res = chain(*sigs).apply_async()
nodes = []
node = res
while node is not None:
    nodes.insert(0, node)
    node = node.parent
failing = ARGS.get('failing_step')
if failing is None:
    out = result_out(res, 20)
else:
    out = result_out(nodes[failing], 20)
    try:
        res.get(timeout=2)
        out['chain_get'] = 'returned'
    except Exception as exc:
        out['chain_get'] = type(exc).__name__
out['ids'] = [n.id for n in nodes]
print(json.dumps(out))
`;

interface ChainOut {
  state: string;
  result: Json;
  ids: string[];
  exc_type?: string;
  chain_get?: string;
}

async function pythonChain(steps: Array<[string, Json[], string | null]>, failingStep?: number) {
  const out = await peerScript(urls, CHAIN, { steps, failing_step: failingStep ?? null });
  return out as unknown as ChainOut;
}

describe('interop: Python chains continue through Celeriac steps (Redis)', () => {
  it('py -> ts -> py: step 2 runs on Celeriac, which publishes step 3 to the Python worker', async () => {
    const out = await pythonChain([
      ['tasks.add', [2, 3], null],
      ['tasks.mul', [10], TS],
      ['tasks.add', [7], null],
    ]);
    expect(out).toMatchObject({ state: 'SUCCESS', result: 57 });
    const [first, second, third] = out.ids;
    expect(out.ids).toHaveLength(3);
    // Only step 2 ran here, with the id Python pre-assigned and the previous result prepended.
    expect(runs.map((r) => [r.name, r.id, r.args])).toEqual([['tasks.mul', second, [5, 10]]]);
    expect(runs[0]?.headers).toMatchObject({ parent_id: first, root_id: first });
    // Step 2's meta names step 3 as its child; Python stored step 3 with step 2 as its parent.
    expect((await meta(second as string)).children).toEqual([[[third, null], null]]);
    expect(await meta(third as string)).toMatchObject({ status: 'SUCCESS', result: 57, parent_id: second });
  });

  it('ts -> py -> ts -> py: a chain that alternates languages ends with the right value', async () => {
    const out = await pythonChain([
      ['tasks.add', [1, 2], TS],
      ['tasks.mul', [10], null],
      ['tasks.add', [5], TS],
      ['tasks.mul', [2], null],
    ]);
    expect(out).toMatchObject({ state: 'SUCCESS', result: ((1 + 2) * 10 + 5) * 2 });
    expect(runs.map((r) => [r.name, r.id, r.args])).toEqual([
      ['tasks.add', out.ids[0], [1, 2]],
      ['tasks.add', out.ids[2], [30, 5]],
    ]);
    // root_id stays the first step's id across both languages.
    expect(runs.map((r) => r.headers.root_id)).toEqual([out.ids[0], out.ids[0]]);
  });

  it('py -> ts: the last step on Celeriac, its result read by Python', async () => {
    const out = await pythonChain([
      ['tasks.add', [1, 1], null],
      ['tasks.mul', [21], TS],
    ]);
    expect(out).toMatchObject({ state: 'SUCCESS', result: 42 });
    expect(runs.map((r) => r.id)).toEqual([out.ids[1]]);
  });

  it('a failing Celeriac step stops the chain; the chain result raises ValueError in Python', async () => {
    const out = await pythonChain(
      [
        ['tasks.add', [1, 1], null],
        ['tasks.fail', [], TS],
        ['tasks.add', [1], null],
      ],
      1,
    );
    expect(out).toMatchObject({ state: 'FAILURE', exc_type: 'ValueError', chain_get: 'ValueError' });
    expect(runs.map((r) => [r.name, r.id, r.args])).toEqual([['tasks.fail', out.ids[1], [2]]]);
    expect(await meta(out.ids[1] as string)).toMatchObject({
      status: 'FAILURE',
      result: { exc_type: 'ValueError', exc_message: ['2'], exc_module: 'builtins' },
    });
    // Step 3 was never sent.
    expect(await admin.exists(`celery-task-meta-${out.ids[2]}`)).toBe(0);
  });
});

// A chain with `link` (added by Celery to the last step's options) and `link_error` (added to every
// step's options), whose middle step runs on Celeriac: the steps Celeriac publishes must keep them.
const CHAIN_LINKS = `
from celery import chain
def sig(name, args, queue=None):
    s = app.signature(name, args=args)
    if queue:
        s = s.set(queue=queue)
    return s
on_error = sig('ts.on_error', [], ARGS['ts'])
on_done = sig('tasks.mul', [2], ARGS['ts'])
on_done.freeze()
steps = [sig(*s) for s in ARGS['steps']]
res = chain(*steps).apply_async(link=on_done, link_error=on_error)
out = result_out(res, 20)
out['link'] = result_out(app.AsyncResult(on_done.id), 20) if out['state'] == 'SUCCESS' else None
ids = []
node = res
while node is not None:
    ids.insert(0, node.id)
    node = node.parent
out['ids'] = ids
print(json.dumps(out))
`;

describe('interop: link and link_error on a Python chain continue past a Celeriac step (Redis)', () => {
  it('link (on the last step) runs after a last step published by Celeriac', async () => {
    const out = (await peerScript(urls, CHAIN_LINKS, {
      ts: TS,
      steps: [
        ['tasks.add', [1, 2]],
        ['tasks.mul', [10], TS],
        ['tasks.add', [1]],
      ],
    })) as unknown as ChainOut & { link: { state: string; result: Json } | null };
    expect(out).toMatchObject({ state: 'SUCCESS', result: 31 });
    expect(out.link).toMatchObject({ state: 'SUCCESS', result: 62 });
  });

  it('a countdown set on a step is kept when Celeriac publishes that step', async () => {
    const out = await peerScript(
      urls,
      `
from celery import chain
s1 = app.signature('tasks.add', args=(1, 2))
s2 = app.signature('tasks.mul', args=(10,)).set(queue=ARGS['ts'])
s3 = app.signature('tasks.add', args=(1,)).set(countdown=1.5)
res = chain(s1, s2, s3).apply_async()
out = result_out(res, 20)
out['ids'] = [res.parent.id, res.id]
print(json.dumps(out))
`,
      { ts: TS },
    );
    expect(out).toMatchObject({ state: 'SUCCESS', result: 31 });
    const [second, third] = out.ids as string[];
    const at = async (id: string) => Date.parse(`${(await meta(id)).date_done as string}Z`);
    // Step 3 is published when step 2 finishes, and must wait its own countdown on the Python worker.
    expect((await at(third as string)) - (await at(second as string))).toBeGreaterThanOrEqual(1500 - 20);
  });

  it('link_error (on every step) runs when a step published by Celeriac fails on Python', async () => {
    const out = (await peerScript(urls, CHAIN_LINKS, {
      ts: TS,
      steps: [
        ['tasks.add', [1, 2]],
        ['tasks.mul', [10], TS],
        ['tasks.fail', []],
      ],
    })) as unknown as ChainOut;
    expect(out).toMatchObject({ state: 'FAILURE', exc_type: 'ValueError' });
    // Python sends the errback it does not know as a task with the failed step's id.
    const deadline = Date.now() + 10_000;
    while (!runs.some((r) => r.name === 'ts.on_error') && Date.now() < deadline) await sleep(20);
    expect(runs.map((r) => [r.name, r.args])).toEqual([
      ['tasks.mul', [3, 10]],
      ['ts.on_error', [out.ids[2]]],
    ]);
  });
});

// Sends `ARGS.task` with link / link_error signatures given as [name, args, queue|null, immutable];
// they get pre-assigned ids (freeze) so their results can be read. The list named by ARGS.expect is
// waited for; the other one, which must not run, is read after that (it would have been sent with it).
const LINKS = `
import time
def sig(spec):
    name, args, queue, immutable = spec
    s = app.signature(name, args=args, immutable=immutable)
    if queue:
        s = s.set(queue=queue)
    s.freeze()
    return s
link = [sig(s) for s in ARGS['link']]
link_error = [sig(s) for s in ARGS['link_error']]
opts = {'queue': ARGS['queue']} if ARGS['queue'] else {}
res = app.send_task(ARGS['task'], args=ARGS['args'], link=link or None, link_error=link_error or None, **opts)
out = result_out(res, 20)
expected, other = ('link', 'link_error') if ARGS['expect'] == 'link' else ('link_error', 'link')
sigs = {'link': link, 'link_error': link_error}
out[expected] = [result_out(app.AsyncResult(s.id), 20) for s in sigs[expected]]
time.sleep(0.3)
out[other] = [{'id': s.id, 'state': app.AsyncResult(s.id).state, 'result': None} for s in sigs[other]]
print(json.dumps(out))
`;

type Spec = [string, Json[], string | null, boolean];
interface LinkOut {
  id: string;
  state: string;
  result: Json;
  exc_type?: string;
  link: Array<{ id: string; state: string; result: Json }>;
  link_error: Array<{ id: string; state: string; result: Json }>;
}

async function pythonLinks(
  task: string,
  args: Json[],
  queue: string | null,
  link: Spec[],
  linkError: Spec[],
): Promise<LinkOut> {
  const expect = task === 'tasks.fail' ? 'link_error' : 'link';
  const out = await peerScript(urls, LINKS, { task, args, queue, link, link_error: linkError, expect });
  return out as unknown as LinkOut;
}

describe('interop: links and link_error sent by Python (Redis)', () => {
  it('a task on Celeriac publishes its callbacks (to Python and to itself) with the result prepended', async () => {
    const out = await pythonLinks(
      'tasks.add',
      [2, 3],
      TS,
      [
        ['tasks.mul', [10], null, false],
        ['tasks.add', [100], TS, false],
        ['tasks.xsum', [[1, 2]], null, true],
      ],
      [['tasks.echo', ['errback'], null, false]],
    );
    expect(out).toMatchObject({ state: 'SUCCESS', result: 5 });
    expect(out.link.map((l) => [l.state, l.result])).toEqual([
      ['SUCCESS', 50],
      ['SUCCESS', 105],
      ['SUCCESS', 3], // immutable: args as given
    ]);
    // No errback on success.
    expect(out.link_error[0]?.state).toBe('PENDING');
    const callback = runs.find((r) => r.id === out.link[1]?.id);
    expect(callback).toMatchObject({ name: 'tasks.add', args: [5, 100] });
    expect(callback?.headers).toMatchObject({ parent_id: out.id, root_id: out.id });
  });

  it('a task failing on Celeriac publishes its errbacks with the failed id (Celery 5.2 errback call)', async () => {
    const out = await pythonLinks(
      'tasks.fail',
      ['nope'],
      TS,
      [['tasks.mul', [10], null, false]],
      [
        ['tasks.echo', ['errback'], null, false],
        ['ts.on_error', [], TS, false],
        ['tasks.echo', ['immutable errback'], null, true],
      ],
    );
    expect(out).toMatchObject({ state: 'FAILURE', exc_type: 'ValueError' });
    expect(out.link_error.map((l) => [l.state, l.result])).toEqual([
      ['SUCCESS', { args: [out.id, 'errback'], kwargs: {} }],
      ['SUCCESS', { errback_for: out.id }],
      ['SUCCESS', { args: ['immutable errback'], kwargs: {} }], // immutable: no failed id
    ]);
    expect(out.link[0]?.state).toBe('PENDING'); // no callback on failure
  });

  it('a task on Python links to Celeriac tasks: the callback and the errback run here', async () => {
    const ok = await pythonLinks(
      'tasks.add',
      [2, 3],
      null,
      [['tasks.mul', [10], TS, false]],
      [['ts.on_error', [], TS, false]],
    );
    expect(ok).toMatchObject({ state: 'SUCCESS', result: 5 });
    expect(ok.link[0]).toMatchObject({ state: 'SUCCESS', result: 50 });
    expect(runs.map((r) => [r.name, r.id, r.args])).toEqual([['tasks.mul', ok.link[0]?.id, [5, 10]]]);

    runs.length = 0;
    const failed = await pythonLinks('tasks.fail', ['nope'], null, [], [['ts.on_error', [], TS, false]]);
    expect(failed).toMatchObject({ state: 'FAILURE', exc_type: 'ValueError' });
    // Python sends an errback it does not know as a task with the failed task's id.
    expect(failed.link_error[0]).toMatchObject({ state: 'SUCCESS', result: { errback_for: failed.id } });
    expect(runs.map((r) => [r.name, r.args])).toEqual([['ts.on_error', [failed.id]]]);
  });
});

describe('interop: a Celeriac event with a Python and a TypeScript subscriber (Redis)', () => {
  it('one publish: Python tasks.echo receives the fields as kwargs, the TypeScript task the payload', async () => {
    const signedUp = app.event('user.signed_up');
    signedUp.subscribe('tasks.echo').subscribe('ts.on_signup');
    const payload = { user_id: 42, email: 'ada@example.com', name: 'Adà ✓', tags: ['a', 'b'], vip: false };
    const published = await signedUp.publish(payload);

    const py = published.results.get('tasks.echo');
    const ts = published.results.get('ts.on_signup');
    expect(py && ts).toBeTruthy();
    expect(py?.id).not.toBe(ts?.id);
    expect(await ts?.get({ timeout: '15s' })).toEqual({ seen: payload });
    expect(await py?.get({ timeout: '15s' })).toEqual({ args: [], kwargs: payload });
    // Python's own AsyncResult reads the same.
    const seenByPython = await peerResult(urls, py?.id as string, 10);
    expect(seenByPython).toMatchObject({ state: 'SUCCESS', result: { args: [], kwargs: payload } });
    // The TypeScript subscriber ran once, as an event run.
    expect(runs.map((r) => [r.name, r.id, r.event, r.args])).toEqual([
      ['ts.on_signup', ts?.id, 'user.signed_up', [payload]],
    ]);
  });
});
