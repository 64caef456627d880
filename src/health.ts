/** Health of one component, or of the whole app. */
export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';

/** What a component says about itself. `reason` is set whenever the status is not healthy. */
export interface HealthReport {
  status: HealthStatus;
  reason?: string;
  /** Sub-reports by component name (`broker`, `results`, `worker`…), for an aggregate. */
  components?: Record<string, HealthReport>;
}

const RANK: Record<HealthStatus, number> = { healthy: 0, degraded: 1, unhealthy: 2 };

/**
 * Aggregates component reports: the worst status wins, and the reason names every component that is
 * not healthy.
 *
 * @example
 * aggregate({ broker: { status: 'healthy' }, results: { status: 'degraded', reason: 'reconnecting' } })
 * // { status: 'degraded', reason: 'results: reconnecting', components: {...} }
 */
export function aggregate(components: Record<string, HealthReport>): HealthReport {
  let status: HealthStatus = 'healthy';
  const reasons: string[] = [];
  for (const [name, report] of Object.entries(components)) {
    if (RANK[report.status] > RANK[status]) status = report.status;
    if (report.status !== 'healthy') reasons.push(`${name}: ${report.reason ?? report.status}`);
  }
  return reasons.length ? { status, reason: reasons.join('; '), components } : { status, components };
}
