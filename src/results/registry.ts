import { parseUrl } from '../brokers/registry.js';
import { ConfigError } from '../errors.js';
import type { ResultSink } from './sink.js';

/** Maps a results URL scheme to its adapter, imported lazily. */
const ADAPTERS: Record<
  string,
  () => Promise<{
    createResultSink: (url: URL, options: { options?: Record<string, unknown> }) => ResultSink;
  }>
> = {
  memory: () => import('./memory/index.js'),
  redis: () => import('./redis/index.js'),
  rediss: () => import('./redis/index.js'),
  'redis+sentinel': () => import('./redis/index.js'),
  'redis+cluster': () => import('./redis/index.js'),
};

/** The schemes `results` accepts. */
export const RESULT_SCHEMES = Object.keys(ADAPTERS);

/** Creates (without connecting) the result sink for a results URL. */
export async function createResultSink(
  url: string,
  options: Record<string, unknown> = {},
): Promise<ResultSink> {
  const parsed = parseUrl(url, 'results');
  const scheme = parsed.protocol.replace(/:$/, '');
  const load = ADAPTERS[scheme];
  if (!load) {
    throw new ConfigError(
      'results',
      `unsupported scheme '${scheme}://', expected one of ${RESULT_SCHEMES.map((s) => `${s}://`).join(', ')}`,
    );
  }
  return (await load()).createResultSink(parsed, { options });
}
