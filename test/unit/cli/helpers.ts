import type { CliIO } from '../../../src/cli/io.js';
import { main } from '../../../src/cli/main.js';

/** Runs the CLI in-process with captured output. */
export async function runCli(argv: string[], options: { tty?: boolean; answer?: boolean } = {}) {
  let stdout = '';
  let stderr = '';
  const io: CliIO = {
    stdout: {
      write: (s) => {
        stdout += s;
      },
      isTTY: options.tty ?? false,
    },
    stderr: {
      write: (s) => {
        stderr += s;
      },
      isTTY: options.tty ?? false,
    },
    confirm: async () => options.answer ?? false,
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

/** The lines of a text, without the empty last one. */
export function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}
