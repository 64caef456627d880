import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Celeriac, ConfigError } from '../../../src/index.js';
import { appModuleUrl, bootstrapSource } from '../../../src/worker/pools/bootstrap.js';
import { findApp } from '../../../src/worker/pools/child-runtime.js';

const fixture = new URL('../../integration/pools/apps/pool-app.ts', import.meta.url);
const transport = { kind: 'memory', shared: false, defaultPriority: 0, fanout: true, revocations: true };

describe('appModuleUrl', () => {
  it('takes a file:// URL or a path (relative to the working directory) and refuses the rest clearly', () => {
    expect(appModuleUrl(fixture.href, 'threads')).toBe(fixture.href);
    expect(appModuleUrl(fileURLToPath(fixture), 'threads')).toBe(fixture.href);
    expect(() => appModuleUrl(undefined, 'threads')).toThrow(/appModule.*import\.meta\.url/);
    expect(() => appModuleUrl('/no/such/app.js', 'process')).toThrow(ConfigError);
    expect(() => appModuleUrl('https://example.com/app.js', 'threads')).toThrow(
      /file path or a file:\/\/ URL/,
    );
  });
});

describe('bootstrapSource', () => {
  it('registers tsx for a TypeScript entry or app, and hands the boot info to the entry', () => {
    const boot = { appModule: fixture.href, transport, sink: null };
    const source = bootstrapSource(boot);
    expect(source).toMatch(/tsx\/dist\/esm\/api\/index\.mjs/);
    expect(source).toMatch(/child-entry\.ts/);
    expect(source).toContain(JSON.stringify(boot));
  });

  it('registers tsx when only the entry is TypeScript (celeriac running from source)', () => {
    const js = pathToFileURL('/srv/app.js').href;
    expect(bootstrapSource({ appModule: js, transport, sink: null })).toMatch(/const tsx = \{/);
  });
});

describe('findApp', () => {
  it('finds the app as `app`, as the default export, or as the only app exported', () => {
    const app = new Celeriac({ logger: 'silent' });
    expect(findApp({ app })).toBe(app);
    expect(findApp({ default: app })).toBe(app);
    expect(findApp({ mine: app, other: 1 })).toBe(app);
    expect(findApp({ a: app, b: new Celeriac({ logger: 'silent' }) })).toBeNull();
    expect(findApp({ app: { tasks: 'no' } })).toBeNull();
  });
});
