/**
 * The one module that reads environment variables (STYLE.md 8). Everything else receives values.
 */
export interface CeleriacEnv {
  /** CELERIAC_BROKER_URL */
  brokerUrl: string | undefined;
  /** CELERIAC_RESULTS_URL */
  resultsUrl: string | undefined;
  /** CELERIAC_LOG_LEVEL (trace, debug, info, warn, error, fatal, silent) */
  logLevel: string | undefined;
}

export function readEnv(env: NodeJS.ProcessEnv = process.env): CeleriacEnv {
  return {
    brokerUrl: env.CELERIAC_BROKER_URL || undefined,
    resultsUrl: env.CELERIAC_RESULTS_URL || undefined,
    logLevel: env.CELERIAC_LOG_LEVEL || undefined,
  };
}
