import type { SendRequest } from '../core.js';
import { PROTOCOL_HEADERS, parseCeleryDate } from '../messages/codec.js';
import type { SignatureJson } from '../messages/types.js';
import type { Job } from './prepare.js';

/**
 * What a worker publishes after a success, as Celery's worker does: the next chain step (the last
 * element of `embed.chain`, which Celery stores reversed) and the `link` callbacks, each with the
 * result prepended to its partial args. `children` is the result meta's children list.
 */
export function followUps(
  job: Job,
  value: unknown,
  queueOf: (task: string) => string,
): { requests: SendRequest[]; children: unknown[] } {
  const requests: SendRequest[] = [];
  const chain = job.message.embed.chain;
  if (chain?.length) {
    const next = chain[chain.length - 1] as SignatureJson;
    requests.push(signatureRequest(next, [value], job, queueOf, chain.slice(0, -1)));
  }
  for (const sig of job.message.embed.callbacks ?? [])
    requests.push(signatureRequest(sig, [value], job, queueOf));
  return { requests, children: requests.map((r) => [[r.taskId, null], null]) };
}

/** The errbacks of a failed task: each is called with the failed task's id (Celery's old-style errback). */
export function errbackRequests(job: Job, queueOf: (task: string) => string): SendRequest[] {
  return (job.message.embed.errbacks ?? []).map((sig) => signatureRequest(sig, [job.id], job, queueOf));
}

/** A serialized signature applied with `prepend` args, as a child of `parent`. */
export function signatureRequest(
  sig: SignatureJson,
  prepend: unknown[],
  parent: Job,
  queueOf: (task: string) => string,
  chain: SignatureJson[] | null = null,
): SendRequest {
  const options = sig.options ?? {};
  const now = Date.now();
  const countdown = seconds(options.countdown);
  const expiresIn = seconds(options.expires);
  const args = sig.immutable ? [...(sig.args ?? [])] : [...prepend, ...(sig.args ?? [])];
  return {
    name: sig.task,
    args,
    kwargs: { ...(sig.kwargs ?? {}) },
    taskId: typeof options.task_id === 'string' ? options.task_id : crypto.randomUUID(),
    // countdown / expires in seconds from now (relative to this publish, as in Celery), or ISO dates.
    eta: countdown !== null ? now + countdown * 1000 : date(options.eta),
    expires: expiresIn !== null ? now + expiresIn * 1000 : date(options.expires),
    priority: typeof options.priority === 'number' ? options.priority : undefined,
    queue: typeof options.queue === 'string' ? options.queue : queueOf(sig.task),
    ignoreResult: options.ignore_result === true,
    shadow: null,
    timelimit: [seconds(options.time_limit), seconds(options.soft_time_limit)],
    // Celery applies the signature with all its options: `link` / `link_error` (a Python chain's
    // apply_async(link=…, link_error=…) puts them on its steps) become the new message's callbacks.
    embed: {
      chain: chain?.length ? chain : null,
      callbacks: signatureList(options.link),
      errbacks: signatureList(options.link_error),
    },
    parentId: parent.id,
    rootId: parent.message.headers.root_id,
  };
}

/** A signature option in seconds (countdown, expires, time limits), or null. */
function seconds(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** A signature option holding an ISO date (eta, expires), as epoch ms, or null when absent or unreadable. */
function date(value: unknown): number | null {
  if (typeof value !== 'string') return null;
  try {
    return parseCeleryDate(value);
  } catch {
    return null;
  }
}

/** A signature option holding signatures (`link`, `link_error`): a list, or one signature. */
function signatureList(value: unknown): SignatureJson[] | null {
  const list: unknown[] = Array.isArray(value) ? value : value === undefined || value === null ? [] : [value];
  const sigs = list.filter(
    (s): s is SignatureJson =>
      typeof s === 'object' && s !== null && typeof (s as { task?: unknown }).task === 'string',
  );
  return sigs.length ? sigs : null;
}

/** The retry of a job: same id, retries + 1, eta, parent_id = its own id (Celery's retry). */
export function retryRequest(job: Job, eta: number): SendRequest {
  const h = job.message.headers;
  const custom: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(h)) if (!PROTOCOL_HEADERS.has(k)) custom[k] = v;
  return {
    name: job.name,
    args: job.message.args,
    kwargs: job.message.kwargs,
    taskId: job.id,
    eta,
    expires: job.expires,
    priority: job.message.priority,
    ignoreResult: h.ignore_result,
    shadow: h.shadow,
    timelimit: h.timelimit,
    headers: custom,
    embed: job.message.embed,
    retries: job.retries + 1,
    rootId: h.root_id,
    parentId: job.id,
    group: h.group,
    groupIndex: h.group_index,
    // Celery keeps the original reply_to, so an rpc:// result still reaches the caller.
    replyTo: nonEmpty(job.message.properties.reply_to),
  };
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}
