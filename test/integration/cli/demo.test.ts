import { describe, expect, it } from 'vitest';
import { DEMO_WORKLOAD, expectedCounts } from '../../../src/cli/demo/workload.js';
import type { DemoSummary } from '../../../src/cli/demo.js';
import { runCli } from './helpers.js';

describe('celeriac demo', () => {
  it('runs the scripted workload in one process and reports exactly it', async () => {
    const r = await runCli(['demo', '--json'], {}, 60_000);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
    expect(line, r.stdout).toBeDefined();
    const summary = JSON.parse(line as string) as DemoSummary;
    const expected = expectedCounts(DEMO_WORKLOAD);
    // 200 adds + 20 flaky + 10 failing + 1 countdown + 1 event × 3 subscribers
    expect(expected).toEqual({ sent: 234, succeeded: 224, failed: 10, retried: 40 });
    expect({
      sent: summary.sent,
      succeeded: summary.succeeded,
      failed: summary.failed,
      retried: summary.retried,
    }).toEqual(expected);
    expect(summary.latencyMs.samples).toBe(expected.sent - DEMO_WORKLOAD.countdown);
    expect(summary.latencyMs.p50).toBeGreaterThanOrEqual(0);
    expect(summary.latencyMs.p99).toBeGreaterThanOrEqual(summary.latencyMs.p50);
    expect(summary.throughput).toBeGreaterThan(0);
    // The countdown task holds the run open at least that long.
    expect(summary.elapsedMs).toBeGreaterThanOrEqual(DEMO_WORKLOAD.countdownMs);
    // The table, for people.
    for (const row of ['sent', 'succeeded', 'failed', 'retried', 'throughput', 'latency p50', 'latency p99'])
      expect(r.stdout).toContain(row);
    // Off a terminal, progress comes as periodic lines on stderr, ending with the final count.
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(
      /finished 234\/234 \(ok 224, failed 10\)\s+retried 40/,
    );
  });
});
