import { randomUUID } from 'node:crypto';
import { controlSuite } from '../../integration/control/suite.js';

/** The remote-control suite on the in-process memory broker (one broker per test). */
controlSuite('memory', {
  urls: () => {
    const name = `control-${randomUUID().slice(0, 8)}`;
    return { broker: `memory://${name}`, results: `memory://${name}` };
  },
});
