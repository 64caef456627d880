import type { AppCore } from './core.js';
import { EagerResult } from './eager.js';
import { TaskError } from './errors.js';
import { uuid4 } from './messages/ids.js';
import { serializeError } from './results/exceptions.js';
import type { Task } from './task.js';
import { runTask } from './worker/execute.js';

/** @internal */
export type EagerCore = AppCore;

/**
 * Runs a task in this process, now (`task.apply()`), for users' unit tests. Retries run again at
 * once (no countdown wait), up to the task's retry limit; nothing touches a broker or a result sink.
 */
export async function applyEager(
  core: EagerCore,
  task: Task<never[], unknown>,
  args: unknown[],
  kwargs: Record<string, unknown>,
): Promise<EagerResult<unknown>> {
  const id = uuid4();
  const validArgs = task.options.argsSchema ? await core.validateArgs(task, args, 'delay') : args;
  for (let retries = 0; ; retries++) {
    const outcome = await runTask({
      task,
      id,
      args: validArgs,
      kwargs,
      headers: { id, task: task.name, retries, root_id: id, parent_id: null },
      retries,
      queue: 'eager',
      hostname: 'eager',
      event: null,
      limits: { hardMs: null, softMs: null },
      updateState: async () => {},
    });
    switch (outcome.kind) {
      case 'success':
        return new EagerResult(id, 'SUCCESS', retries, outcome.value);
      case 'retry':
        continue;
      case 'ignore':
        return new EagerResult(id, 'IGNORED', retries, undefined);
      case 'reject':
        return EagerResult.failed(
          id,
          retries,
          new TaskError(id, {
            excType: 'Reject',
            excMessage: [outcome.reason],
            excModule: 'celeriac.errors',
          }),
        );
      case 'failure': {
        const { info, traceback } = serializeError(outcome.error);
        return EagerResult.failed(
          id,
          retries,
          new TaskError(id, {
            excType: info.exc_type,
            excMessage: info.exc_message,
            excModule: info.exc_module,
            traceback,
          }),
        );
      }
    }
  }
}
