import { PoolDispatcher } from '../../src/dispatch/dispatcher-pool.js';
import { fixtureModules } from '../fixtures/server.js';
import { dispatcherConformance } from './conformance.js';

dispatcherConformance(
  'local-pool',
  () =>
    new PoolDispatcher({
      threads: 2,
      handlerModules: [fixtureModules.handlers],
      setup: fixtureModules.setup,
      debug: false,
      defaultTimeoutMs: 30_000,
      maxFrameSize: 16 * 1024 * 1024,
      logLevel: 'silent',
    }),
);

import { describe, expect, it } from 'vitest';
import { createServer } from '../../src/index.js';
import { fixtureHandlers } from '../fixtures/handlers.js';
import { silent } from '../fixtures/server.js';

describe('local-pool configuration', () => {
  it('refuses to start without handler modules (classes cannot cross threads)', async () => {
    const server = createServer({ handlers: fixtureHandlers, dispatch: 'local-pool', port: 0, transport: 'net', logger: silent });
    await expect(server.listen()).rejects.toMatchObject({ code: 'DIOCP_ERR_CONFIG_INVALID', message: expect.stringMatching(/"handlers".*local-pool/) });
  });
});
