import { ConfigError, TimeLimitExceeded } from '../../errors.js';
import type { HealthReport } from '../../health.js';
import type { Logger } from '../../logging.js';
import type { Outcome } from '../execute.js';
import type { Pool, PoolOptions, PoolRun } from '../pool.js';
import { appModuleUrl, bootstrapSource } from './bootstrap.js';
import { HostServer } from './host-server.js';
import type { BootInfo, ToChild, ToParent, WireOutcome } from './protocol.js';
import { fromWireError, fromWireOutcome } from './protocol.js';

/** A started thread or child process, as the pool drives it (threads.ts and process.ts make them). */
export interface SlotHandle {
  /** The thread id or the pid. */
  readonly id: number;
  send(message: ToChild): void;
  onMessage(listener: (message: ToParent) => void): void;
  /** Called once, when the thread or child has ended, with why. */
  onExit(listener: (why: string) => void): void;
  /** Ends it now, even in the middle of a busy loop (`terminate()` / SIGKILL). */
  kill(): void;
}

export type Spawn = (source: string) => SlotHandle;

/** Celery's name for a task whose pool process died under it. */
function workerLost(why: string): Error {
  const error = new Error(`Worker exited prematurely: ${why}`);
  error.name = 'WorkerLostError';
  return error;
}

function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason ?? 'aborted'));
}

interface Current {
  runId: number;
  done(outcome: WireOutcome, memory: number): void;
  lost(why: string): void;
}

class Slot {
  readonly handle: SlotHandle;
  readonly server: HostServer;
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;
  state: 'starting' | 'idle' | 'busy' | 'ending' = 'starting';
  tasks = 0;
  current: Current | null = null;

  constructor(handle: SlotHandle, server: HostServer, onGone: (slot: Slot, why: string) => void) {
    this.handle = handle;
    this.server = server;
    let ready: { resolve: () => void; reject: (err: Error) => void } | undefined;
    this.ready = new Promise<void>((resolve, reject) => {
      ready = { resolve, reject };
    });
    this.ready.catch(() => {});
    handle.onMessage((message) => {
      if (server.receive(message)) return;
      if (message.t === 'ready') ready?.resolve();
      else if (message.t === 'failed') ready?.reject(fromWireError(message.error));
      else if (message.t === 'done' && this.current?.runId === message.runId)
        this.current.done(message.outcome, message.memory);
    });
    this.exited = new Promise<void>((resolve) => {
      handle.onExit((why) => {
        ready?.reject(new Error(`it ended before loading the app: ${why}`));
        void server.dispose();
        onGone(this, why);
        resolve();
      });
    });
  }
}

/**
 * The threads and process pools: a set of slots (threads or children), each loading the app module
 * and running one task at a time. Ours rather than piscina's: piscina can kill a busy thread, but
 * not retire a given thread after N tasks or above a memory mark, and the process pool needs the
 * same slot logic. A slot is killed at the hard time limit, on revoke-terminate and at the shutdown
 * deadline, retired after `maxTasksPerChild` tasks or above `maxMemoryPerChild`, and replaced.
 */
export class SlotPool implements Pool {
  readonly kind: 'threads' | 'process';
  readonly #spawn: Spawn;
  readonly #options: PoolOptions;
  readonly #log: Logger;
  #size: number;
  #state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  #boot: BootInfo | null = null;
  #server: ((send: (m: ToChild) => void) => HostServer) | null = null;
  readonly #slots = new Set<Slot>();
  readonly #idle: Slot[] = [];
  readonly #ending = new Set<Promise<void>>();
  readonly #waiters: Array<{ resolve: (slot: Slot) => void; reject: (err: Error) => void }> = [];
  #starting = 0;
  readonly #runs = new Map<number, PoolRun>();
  #nextRun = 1;
  #spawnError: Error | null = null;
  #drained: (() => void) | null = null;
  /** Slots replaced so far (killed, retired or lost). */
  replaced = 0;

  constructor(kind: 'threads' | 'process', options: PoolOptions, spawn: Spawn) {
    this.kind = kind;
    this.#options = options;
    this.#spawn = spawn;
    this.#log = options.log;
    this.#size = Math.max(1, Math.floor(options.size));
    for (const [field, value] of [
      ['maxTasksPerChild', options.maxTasksPerChild],
      ['maxMemoryPerChild', options.maxMemoryPerChild],
    ] as const) {
      if (value !== undefined && !(Number.isInteger(value) && value > 0))
        throw new ConfigError(field, `expected an integer > 0, got ${value}`);
    }
  }

  get size(): number {
    return this.#size;
  }

  /** Loads the app in a first slot, so a module that cannot load fails here rather than every task. */
  async start(): Promise<void> {
    if (this.#state !== 'new') return;
    const appModule = appModuleUrl(this.#options.appModule, this.kind);
    const host = this.#options.host;
    if (!host) throw new ConfigError('pool', `the '${this.kind}' pool needs the worker's transport and sink`);
    const transport = await host.transport();
    const sink = await host.sink();
    this.#boot = {
      appModule,
      transport: {
        kind: transport.kind,
        shared: transport.shared,
        defaultPriority: transport.defaultPriority ?? 0,
        fanout: transport.fanout !== undefined,
        revocations: transport.revocations !== undefined,
      },
      sink: sink ? { kind: sink.kind, shared: sink.shared } : null,
    };
    this.#server = (send) => new HostServer(transport, sink, this.#runs, send);
    this.#state = 'running';
    const slot = this.#startSlot();
    try {
      await slot.ready;
    } catch (err) {
      this.#state = 'stopped';
      slot.handle.kill();
      await slot.exited;
      throw new ConfigError(
        'appModule',
        `could not load ${appModule} in a ${this.kind === 'threads' ? 'thread' : 'child process'}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    this.#release(slot);
  }

  async run(run: PoolRun): Promise<Outcome> {
    if (run.signal.aborted) return { kind: 'failure', error: asError(run.signal.reason) };
    let slot: Slot;
    try {
      slot = await this.#acquire(run.signal);
    } catch (err) {
      return { kind: 'failure', error: asError(err) };
    }
    return this.#dispatch(slot, run);
  }

  resize(size: number): void {
    this.#size = Math.max(1, Math.floor(size));
    while (this.#slots.size > this.#size && this.#idle.length) this.#retire(this.#idle.pop() as Slot);
    this.#grow();
  }

  async stop(options: { force?: boolean } = {}): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopping';
    for (const w of this.#waiters.splice(0)) w.reject(new Error(`the ${this.kind} pool is stopping`));
    const busy = () => [...this.#slots].some((s) => s.current !== null);
    if (!options.force && busy())
      await new Promise<void>((resolve) => {
        this.#drained = resolve;
      });
    for (const slot of [...this.#slots]) {
      if (options.force || slot.state === 'starting') this.#kill(slot, 'the pool stopped');
      else this.#retire(slot);
    }
    await Promise.all([...this.#ending]);
    this.#state = 'stopped';
  }

  health(): HealthReport {
    if (this.#state === 'new') return { status: 'degraded', reason: 'not started' };
    if (this.#state !== 'running') return { status: 'unhealthy', reason: this.#state };
    if (this.#spawnError && this.#slots.size === 0)
      return { status: 'degraded', reason: `cannot start a slot: ${this.#spawnError.message}` };
    return { status: 'healthy' };
  }

  // ---- slots ----

  #startSlot(): Slot {
    const source = bootstrapSource(this.#boot as BootInfo);
    const handle = this.#spawn(source);
    const server = (this.#server as (send: (m: ToChild) => void) => HostServer)((m) => handle.send(m));
    const slot = new Slot(handle, server, (s, why) => this.#gone(s, why));
    this.#slots.add(slot);
    this.#ending.add(slot.exited);
    void slot.exited.then(() => this.#ending.delete(slot.exited));
    return slot;
  }

  /** Starts slots so that every waiter has one coming, within the size. */
  #grow(): void {
    while (
      this.#state === 'running' &&
      this.#waiters.length > this.#starting &&
      this.#slots.size < this.#size
    )
      this.#startAndRelease();
  }

  /** A replacement: keeps the pool warm so the next task does not wait for the app to load. */
  #replace(): void {
    this.replaced++;
    if (this.#state === 'running' && this.#slots.size < this.#size) this.#startAndRelease();
  }

  #startAndRelease(): void {
    const slot = this.#startSlot();
    this.#starting++;
    slot.ready.then(
      () => {
        this.#starting--;
        this.#spawnError = null;
        this.#release(slot);
      },
      (err: Error) => {
        this.#starting--;
        if (this.#state !== 'running') return;
        this.#spawnError = err;
        this.#log.error({ err }, `could not start a ${this.kind} slot`);
        this.#waiters.shift()?.reject(err);
      },
    );
  }

  #acquire(signal: AbortSignal): Promise<Slot> {
    const idle = this.#idle.pop();
    if (idle) {
      idle.state = 'busy';
      return Promise.resolve(idle);
    }
    return new Promise<Slot>((resolve, reject) => {
      const waiter = {
        resolve: (slot: Slot) => {
          signal.removeEventListener('abort', onAbort);
          resolve(slot);
        },
        reject: (err: Error) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const onAbort = () => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(asError(signal.reason));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
      this.#grow();
    });
  }

  /** A slot is free: to a waiter, to the idle list, or retired when the pool shrank or stops. */
  #release(slot: Slot): void {
    if (slot.state === 'ending') return;
    if (this.#state !== 'running' || this.#slots.size > this.#size) {
      this.#retire(slot);
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter) {
      slot.state = 'busy';
      waiter.resolve(slot);
    } else {
      slot.state = 'idle';
      this.#idle.push(slot);
    }
  }

  #dispatch(slot: Slot, run: PoolRun): Promise<Outcome> {
    const runId = this.#nextRun++;
    this.#runs.set(runId, run);
    return new Promise<Outcome>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (outcome: Outcome): boolean => {
        if (slot.current?.runId !== runId) return false;
        slot.current = null;
        clearTimeout(timer);
        run.signal.removeEventListener('abort', onAbort);
        this.#runs.delete(runId);
        resolve(outcome);
        this.#checkDrained();
        return true;
      };
      const killWith = (error: Error, why: string) => {
        if (finish({ kind: 'failure', error })) this.#kill(slot, why);
      };
      const onAbort = () =>
        killWith(
          asError(run.signal.reason),
          `task ${run.id} stopped (${asError(run.signal.reason).message})`,
        );
      slot.current = {
        runId,
        done: (wire, memory) => {
          if (!finish(fromWireOutcome(wire))) return;
          slot.tasks++;
          this.#afterTask(slot, memory);
        },
        lost: (why) => void finish({ kind: 'failure', error: workerLost(why) }),
      };
      const { hardMs, softMs } = run.limits;
      if (hardMs !== null)
        timer = setTimeout(
          () => killWith(new TimeLimitExceeded(hardMs), `task ${run.id} reached its hard time limit`),
          hardMs,
        );
      run.signal.addEventListener('abort', onAbort, { once: true });
      try {
        slot.handle.send({
          t: 'run',
          runId,
          spec: {
            name: run.task.name,
            id: run.id,
            args: run.args,
            kwargs: run.kwargs,
            headers: run.headers,
            retries: run.retries,
            queue: run.queue,
            hostname: run.hostname,
            event: run.event,
            softMs,
          },
        });
      } catch (err) {
        if (finish({ kind: 'failure', error: asError(err) })) this.#release(slot);
      }
    });
  }

  /** After a task: retire the slot at its task or memory limit, else free it. */
  #afterTask(slot: Slot, memory: number): void {
    const { maxTasksPerChild, maxMemoryPerChild } = this.#options;
    if (maxTasksPerChild !== undefined && slot.tasks >= maxTasksPerChild) {
      this.#log.info(
        { slot: slot.handle.id, tasks: slot.tasks },
        `${this.kind} slot retired after maxTasksPerChild`,
      );
      this.#retire(slot);
      this.#replace();
    } else if (maxMemoryPerChild !== undefined && memory > maxMemoryPerChild) {
      this.#log.info({ slot: slot.handle.id, memory }, `${this.kind} slot retired above maxMemoryPerChild`);
      this.#retire(slot);
      this.#replace();
    } else this.#release(slot);
  }

  /** Asks a free slot to exit; kills it if it does not within 5s. */
  #retire(slot: Slot): void {
    if (slot.state === 'ending') return;
    this.#forget(slot);
    try {
      slot.handle.send({ t: 'exit' });
    } catch {
      slot.handle.kill();
      return;
    }
    const timer = setTimeout(() => slot.handle.kill(), 5000);
    void slot.exited.then(() => clearTimeout(timer));
  }

  /** Kills a slot now (hard limit, revoke-terminate, shutdown deadline) and starts a replacement. */
  #kill(slot: Slot, why: string): void {
    if (slot.state === 'ending') return;
    this.#forget(slot);
    slot.handle.kill();
    if (this.#state === 'running') {
      this.#log.warn({ slot: slot.handle.id }, `${this.kind} slot killed: ${why}`);
      this.#replace();
    }
  }

  #forget(slot: Slot): void {
    slot.state = 'ending';
    this.#slots.delete(slot);
    const i = this.#idle.indexOf(slot);
    if (i >= 0) this.#idle.splice(i, 1);
  }

  /** The thread or child ended: fail its task if it had one, and replace it if nobody asked it to go. */
  #gone(slot: Slot, why: string): void {
    const was = slot.state;
    const current = slot.current;
    this.#forget(slot);
    if (current) current.lost(why);
    // A slot that dies while starting is handled by its `ready` rejection (no replacement loop).
    if (was !== 'ending' && was !== 'starting' && this.#state === 'running') {
      this.#log.error({ slot: slot.handle.id, why }, `${this.kind} slot ended unexpectedly`);
      this.#replace();
    }
  }

  #checkDrained(): void {
    if (this.#drained && ![...this.#slots].some((s) => s.current !== null)) {
      const drained = this.#drained;
      this.#drained = null;
      drained();
    }
  }
}
