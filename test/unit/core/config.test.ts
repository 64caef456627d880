import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../src/config.js';
import { Celeriac, ConfigError } from '../../../src/index.js';

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.field;
    throw err;
  }
  return undefined;
}

describe('config is validated once, with errors that name the field', () => {
  it('applies defaults', () => {
    const c = resolveConfig({});
    expect(c).toMatchObject({
      broker: 'memory://',
      results: undefined,
      defaultQueue: 'celery',
      resultExpiresMs: 86_400_000,
      trackStarted: false,
      maxDeliveries: 5,
    });
  });

  it('falls back to the environment for broker and results', () => {
    expect(resolveConfig({}, { brokerUrl: 'redis://h/1', resultsUrl: 'redis://h/2' })).toMatchObject({
      broker: 'redis://h/1',
      results: 'redis://h/2',
    });
    expect(resolveConfig({ broker: 'memory://x' }, { brokerUrl: 'redis://h/1' }).broker).toBe('memory://x');
  });

  it.each([
    [{ brokr: 'redis://' }, 'brokr', /unknown option.*broker/],
    [{ broker: 42 }, 'broker', /non-empty string, got number 42/],
    [{ maxDeliveries: 0 }, 'maxDeliveries', /integer > 0/],
    [{ trackStarted: 'yes' }, 'trackStarted', /true or false/],
    [{ resultExpires: 'soon' }, 'resultExpires', /duration like/],
    [{ routes: { 'a.*': { queue: '' } } }, 'routes', /route 'a\.\*'/],
    [{ brokerOptions: [] }, 'brokerOptions', /expected an object, got an array/],
  ])('refuses %j naming %s', (config, field, message) => {
    expect(fieldOf(() => new Celeriac(config as never))).toBe(field);
    expect(() => new Celeriac(config as never)).toThrow(message);
  });

  it('refuses an unsupported broker scheme on first use, naming it and never echoing credentials', async () => {
    const app = new Celeriac({ broker: 'kafka://user:secret@host:9092', logger: 'silent' });
    const err = (await app.transport().catch((e: unknown) => e)) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.field).toBe('broker');
    expect(err.message).toMatch(/unsupported scheme 'kafka:\/\/'/);
    expect(err.message).not.toContain('secret');
    await app.close();
  });

  it('memory:// results work in one process with the default broker', async () => {
    const app = new Celeriac({ results: 'memory://', logger: 'silent' });
    const t = app.task('t', () => 7);
    await app.worker().start();
    expect(await (await t.delay()).get({ timeout: 2000 })).toBe(7);
    await app.close();
  });
});
