import type { CliIO } from './io.js';
import { UsageError } from './io.js';

/**
 * For destructive commands: true with `--force`, else asks on the terminal. Off a terminal there is
 * nobody to ask, so it refuses (exit 2) rather than guess.
 */
export async function confirmed(io: CliIO, force: boolean | undefined, question: string): Promise<boolean> {
  if (force) return true;
  const answer = await io.confirm(question);
  if (answer) return true;
  if (!io.stderr.isTTY)
    throw new UsageError(
      `${question.replace(/\?$/, '')}: refused without --force (not on a terminal, nobody to confirm)`,
    );
  io.stderr.write('aborted: nothing was deleted\n');
  return false;
}
