/**
 * Where the CLI reads and writes. Commands never touch `process.stdout` directly, so tests can run
 * them in-process and read what they printed.
 */
export interface Output {
  write(text: string): void;
  /** True on a terminal: progress lines are rewritten in place instead of printed one per tick. */
  readonly isTTY: boolean;
}

export interface CliIO {
  stdout: Output;
  stderr: Output;
  /** Asks a yes/no question on the terminal; resolves false when stdin is not a terminal. */
  confirm(question: string): Promise<boolean>;
}

/** The real terminal. */
export function processIO(): CliIO {
  const wrap = (stream: NodeJS.WriteStream): Output => ({
    write: (text) => void stream.write(text),
    get isTTY() {
      return stream.isTTY === true;
    },
  });
  return {
    stdout: wrap(process.stdout),
    stderr: wrap(process.stderr),
    async confirm(question) {
      if (!process.stdin.isTTY) return false;
      const { createInterface } = await import('node:readline/promises');
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        const answer = await rl.question(`${question} [y/N] `);
        return /^y(es)?$/i.test(answer.trim());
      } finally {
        rl.close();
      }
    },
  };
}

/**
 * A mistake in how the command was called (a bad flag value, an app file that cannot be loaded, a
 * broker that cannot serve this command): printed as one line, exit code 2.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The command ran and reports a failure (a task that failed, a timeout): one line, exit code 1. */
export class CommandFailed extends Error {
  override readonly name = 'CommandFailed';
}
