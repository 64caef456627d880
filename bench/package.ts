/**
 * The compiled package, as users run it (`npm run bench` builds first), typed from the sources so
 * that typechecking needs no build. Every suite and worker process takes Celeriac from here.
 */
export const { Celeriac } = (await import(
  new URL('../dist/index.js', import.meta.url).href
)) as typeof import('../src/index.js');
export type Celeriac = InstanceType<typeof Celeriac>;
