import { existsSync, readdirSync } from 'node:fs';
import type { Suite, SuiteReport } from './harness.js';
import { createContext, formatTable, machine, writeReport } from './harness.js';

/**
 * `npm run bench [-- <suite>...]`: runs the named suites (every suite found when none is named).
 * A suite is any folder bench/<name>/ with an index.ts that exports `suite`.
 */
async function main(argv: string[]): Promise<number> {
  const found = discover();
  if (argv.includes('--help') || argv.includes('-h') || argv.includes('--list')) {
    process.stdout.write(
      `usage: npm run bench [-- <suite>...]\nsuites: ${[...found.keys()].join(', ') || 'none'}\n`,
    );
    return 0;
  }
  const unknown = argv.filter((name) => !found.has(name));
  if (unknown.length) {
    process.stderr.write(
      `error: unknown suite ${unknown.join(', ')} (suites: ${[...found.keys()].join(', ')})\n`,
    );
    return 2;
  }
  const names = argv.length ? argv : [...found.keys()];
  let failed = 0;
  for (const name of names) {
    const suite = await load(found.get(name) as URL, name);
    const why = suite.available ? await suite.available() : true;
    if (why !== true) {
      process.stderr.write(`\n${name}: skipped (${why})\n`);
      continue;
    }
    process.stderr.write(`\n${name}: ${suite.description}\n`);
    const ctx = createContext();
    const startedAt = new Date();
    try {
      const measurements = await suite.run(ctx);
      ctx.finish();
      const report: SuiteReport = {
        suite: name,
        description: suite.description,
        startedAt: startedAt.toISOString(),
        durationMs: Date.now() - startedAt.getTime(),
        machine: machine(),
        peers: suite.peers ?? [],
        measurements,
      };
      process.stdout.write(
        `\n${name} (${report.machine.cpuModel}, ${report.machine.cpus} cpus, node ${report.machine.node})\n`,
      );
      process.stdout.write(formatTable(report));
      process.stdout.write(`written to ${writeReport(report)}\n`);
    } catch (err) {
      ctx.finish();
      failed++;
      process.stderr.write(
        `${name}: failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
    }
  }
  return failed ? 1 : 0;
}

/** bench/<name>/index.ts for every folder that has one. */
function discover(): Map<string, URL> {
  const root = new URL('./', import.meta.url);
  const suites = new Map<string, URL>();
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name === 'results' || entry.name.startsWith('.')) continue;
    const index = new URL(`${entry.name}/index.ts`, root);
    if (existsSync(index)) suites.set(entry.name, index);
  }
  return suites;
}

async function load(url: URL, name: string): Promise<Suite> {
  const mod = (await import(url.href)) as { suite?: Suite };
  if (!mod.suite || typeof mod.suite.run !== 'function') {
    throw new Error(`bench/${name}/index.ts must export \`suite\` (a Suite from bench/harness.ts)`);
  }
  return mod.suite;
}

process.exitCode = await main(process.argv.slice(2));
