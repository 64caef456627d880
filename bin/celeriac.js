#!/usr/bin/env node
// The `celeriac` command: runs the built CLI (dist/cli/main.js). From a source checkout, build first
// (`npm run build`) or run `npx tsx src/cli/main.ts` instead.
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(
    'error: celeriac is not built (dist/cli/main.js is missing): run `npm run build` first\n',
  );
  process.exit(2);
}
const { run } = await import(main.href);
await run();
