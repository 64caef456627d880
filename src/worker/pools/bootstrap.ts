import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ConfigError } from '../../errors.js';
import type { BootInfo } from './protocol.js';

const TS = /\.[cm]?ts$/;

/** The app module as a file:// URL (a path is resolved from the working directory). */
export function appModuleUrl(appModule: string | undefined, kind: string): string {
  if (!appModule)
    throw new ConfigError(
      'appModule',
      `the '${kind}' pool loads the app in each ${kind === 'threads' ? 'thread' : 'child'}: pass appModule (the file that exports the app, e.g. import.meta.url), or --app on the CLI`,
    );
  if (appModule.startsWith('file:')) return new URL(appModule).href;
  if (/^[a-z][a-z0-9+.-]*:/i.test(appModule) && !/^[a-z]:[\\/]/i.test(appModule))
    throw new ConfigError('appModule', `expected a file path or a file:// URL, got '${appModule}'`);
  const path = isAbsolute(appModule) ? appModule : resolve(appModule);
  if (!existsSync(path)) throw new ConfigError('appModule', `no such file: ${path}`);
  return pathToFileURL(path).href;
}

/** The entry a thread or child imports: the .ts source when this code runs from source (tests, tsx). */
function entryUrl(): string {
  const here = import.meta.url;
  return new URL(`./child-entry.${here.endsWith('.ts') ? 'ts' : 'js'}`, here).href;
}

/** tsx's register APIs (ESM and CJS hooks), looked up from celeriac, then from the app's folder. */
function tsxApis(appUrl: string): { esm: string; cjs: string } {
  const from = [import.meta.url, appUrl];
  for (const base of from) {
    try {
      const pkg = createRequire(base).resolve('tsx/package.json');
      const dist = join(dirname(pkg), 'dist');
      return {
        esm: pathToFileURL(join(dist, 'esm', 'api', 'index.mjs')).href,
        cjs: pathToFileURL(join(dist, 'cjs', 'api', 'index.mjs')).href,
      };
    } catch {
      // try the next base
    }
  }
  throw new ConfigError(
    'appModule',
    `${fileURLToPath(appUrl)} is TypeScript: loading it in a thread or child needs tsx (npm install tsx), or point appModule at the compiled .js file`,
  );
}

/**
 * The ESM source that starts a thread or child: registers tsx when the entry or the app is
 * TypeScript, then imports the entry and hands it the boot info. Plain JavaScript with absolute
 * URLs only, so it runs as a `data:` URL worker and as `node --input-type=module -e`.
 */
export function bootstrapSource(boot: BootInfo): string {
  const entry = entryUrl();
  const needsTsx = TS.test(new URL(entry).pathname) || TS.test(new URL(boot.appModule).pathname);
  const tsx = needsTsx ? tsxApis(boot.appModule) : null;
  return [
    `const tsx = ${JSON.stringify(tsx)};`,
    'if (tsx) { (await import(tsx.esm)).register(); (await import(tsx.cjs)).register(); }',
    `const { main } = await import(${JSON.stringify(entry)});`,
    `await main(${JSON.stringify(boot)});`,
  ].join('\n');
}
