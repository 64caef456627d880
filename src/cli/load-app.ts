import { existsSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Celeriac } from '../index.js';
import { UsageError } from './io.js';

const TS_EXTENSIONS = new Set(['.ts', '.mts', '.cts', '.tsx']);
let tsxRegistered = false;

/**
 * Imports an app module and returns its Celeriac app: the `app` export, else the default export.
 * `.ts` files load through tsx's ESM API when tsx is installed (or run as they are when the CLI
 * itself runs under tsx). Every failure is a UsageError with one line that says what went wrong.
 *
 * @example
 * const app = await loadApp('./dist/app.js');
 */
export async function loadApp(file: string, cwd = process.cwd()): Promise<Celeriac> {
  const path = resolve(cwd, file);
  if (!existsSync(path)) throw new UsageError(`app file not found: ${file}`);
  const mod = await importModule(path, file);
  const found =
    mod.app !== undefined ? { name: 'app', value: mod.app } : { name: 'default', value: mod.default };
  if (isCeleriac(found.value)) return found.value;
  const exportsList = Object.keys(mod).join(', ') || 'none';
  throw new UsageError(
    found.value === undefined
      ? `${file} has no \`app\` export and no default export (its exports: ${exportsList}); export your Celeriac instance as \`app\``
      : `${file}: the \`${found.name}\` export is ${describe(found.value)}, expected a Celeriac instance (new Celeriac({...}))`,
  );
}

async function importModule(path: string, file: string): Promise<Record<string, unknown>> {
  const url = pathToFileURL(path).href;
  try {
    return (await import(url)) as Record<string, unknown>;
  } catch (err) {
    if (
      !(TS_EXTENSIONS.has(extname(path)) && (err as { code?: string }).code === 'ERR_UNKNOWN_FILE_EXTENSION')
    ) {
      throw loadError(file, err);
    }
  }
  // A TypeScript file and no TypeScript loader yet: register tsx's, then import again (with a query,
  // since the failed import of the bare URL stays cached).
  await registerTsx(file);
  try {
    return (await import(`${url}?celeriac-tsx`)) as Record<string, unknown>;
  } catch (err) {
    throw loadError(file, err);
  }
}

async function registerTsx(file: string): Promise<void> {
  if (tsxRegistered) return;
  let api: { register: () => unknown };
  try {
    api = await import('tsx/esm/api');
  } catch {
    throw new UsageError(
      `cannot load ${file}: TypeScript app files need tsx (npm install --save-dev tsx), or build it and pass the .js file`,
    );
  }
  api.register();
  tsxRegistered = true;
}

function loadError(file: string, err: unknown): UsageError {
  const message = err instanceof Error ? err.message : String(err);
  const first = message.split('\n').find((l) => l.trim() !== '') ?? 'unknown error';
  return new UsageError(`cannot load app file ${file}: ${first.trim()}`);
}

/**
 * `instanceof` first; then by shape, because an app file may import the package through another
 * path than the CLI (`celeriac` from node_modules vs. a source checkout) and get its own copy of
 * the class.
 */
function isCeleriac(value: unknown): value is Celeriac {
  if (value instanceof Celeriac) return true;
  if (value === null || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  return (
    v.constructor?.name === 'Celeriac' &&
    typeof v.worker === 'function' &&
    typeof v.sendTask === 'function' &&
    typeof v.transport === 'function'
  );
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'function') return `a function (${value.name || 'anonymous'})`;
  if (typeof value === 'object') return `an object of class ${value.constructor?.name ?? 'Object'}`;
  return `a ${typeof value} (${JSON.stringify(value)})`;
}
