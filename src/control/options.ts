import type { Duration } from '../duration.js';

/** Who a broadcast is for and how long to wait for replies. */
export interface TargetOptions {
  /** Node names (`celeriac@host`, `celery@host`); default every node. */
  destination?: string | readonly string[];
  /** With `matcher`: nodes whose name matches (`glob` or `pcre`), as Celery's pattern/matcher. */
  pattern?: string;
  matcher?: 'glob' | 'pcre';
  /** How long to collect replies. Default 1 s (Celery's). */
  timeout?: Duration;
  /** Stop collecting after this many replies (default: the number of destinations, if given). */
  limit?: number;
}
