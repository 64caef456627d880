import Table from 'cli-table3';

/**
 * A plain table for terminal output (cli-table3, no colours so logs and pipes stay clean).
 *
 * @example
 * io.stdout.write(table(['id', 'reason'], [['1', 'poison']]));
 */
export function table(
  head: readonly string[],
  rows: ReadonlyArray<readonly (string | number)[]>,
  align?: ReadonlyArray<'left' | 'right'>,
): string {
  const t = new Table({
    head: [...head],
    style: { head: [], border: [] },
    // No rule between body rows: compact, and easy to read in a log.
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
    ...(align ? { colAligns: [...align] } : {}),
  });
  for (const row of rows) t.push(row.map((c) => String(c)));
  return `${t.toString()}\n`;
}

/** A single line shortened to `max` characters. */
export function clip(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
