import { describe, expect, it } from 'vitest';
import { confirmed } from '../../../src/cli/confirm.js';
import type { CliIO } from '../../../src/cli/io.js';
import { UsageError } from '../../../src/cli/io.js';

function io(tty: boolean, answer: boolean): CliIO & { err: () => string } {
  let err = '';
  return {
    stdout: { write: () => undefined, isTTY: tty },
    stderr: {
      write: (s) => {
        err += s;
      },
      isTTY: tty,
    },
    confirm: async () => answer,
    err: () => err,
  };
}

describe('confirmation of destructive commands', () => {
  it('--force needs no question', async () => {
    expect(await confirmed(io(false, false), true, 'delete?')).toBe(true);
  });

  it('asks on a terminal and respects a no', async () => {
    expect(await confirmed(io(true, true), false, 'delete?')).toBe(true);
    const t = io(true, false);
    expect(await confirmed(t, false, 'delete?')).toBe(false);
    expect(t.err()).toContain('aborted');
  });

  it('refuses off a terminal without --force', async () => {
    await expect(
      confirmed(io(false, false), false, 'delete the 3 messages waiting in queue celery?'),
    ).rejects.toThrow(UsageError);
    await expect(confirmed(io(false, false), false, 'delete x?')).rejects.toThrow(/refused without --force/);
  });
});
