/**
 * What `celeriac demo` sends. The demo's summary must match `expectedCounts(DEMO_WORKLOAD)`; its test
 * checks exactly that.
 */
export const DEMO_WORKLOAD = {
  /** demo.add: succeed at once. */
  add: 200,
  /** demo.flaky: fail twice (retried), then succeed. */
  flaky: 20,
  /** Retries of each demo.flaky task. */
  flakyRetries: 2,
  /** demo.fail: always fail. */
  fail: 10,
  /** demo.reminder: sent with a countdown, parked in the broker's delayed store meanwhile. */
  countdown: 1,
  countdownMs: 1500,
  /** demo.order.placed publishes: each reaches 3 subscribers, each its own message. */
  events: 1,
  subscribers: 3,
} as const;

export type DemoWorkload = typeof DEMO_WORKLOAD;

/** The counts a correct run reports: messages sent, and how each ends. */
export interface DemoCounts {
  sent: number;
  succeeded: number;
  failed: number;
  retried: number;
}

export function expectedCounts(w: DemoWorkload = DEMO_WORKLOAD): DemoCounts {
  const eventCopies = w.events * w.subscribers;
  return {
    sent: w.add + w.flaky + w.fail + w.countdown + eventCopies,
    succeeded: w.add + w.flaky + w.countdown + eventCopies,
    failed: w.fail,
    retried: w.flaky * w.flakyRetries,
  };
}
