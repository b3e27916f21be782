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

describe('local-pool start-up', () => {
  it('stops the start when a thread cannot build its handler table (a missing DI token), as inline does', async () => {
    const { PoolDispatcher } = await import('../../src/dispatch/dispatcher-pool.js');
    const { fixtureModules } = await import('../fixtures/server.js');
    const server = createServer({
      handlers: fixtureHandlers,
      port: 0,
      transport: 'net',
      logger: silent,
      // No setup module: the 'greeting' token of the Injected handler is missing in the threads.
      dispatcherInstance: new PoolDispatcher({
        threads: 1,
        handlerModules: [fixtureModules.handlers],
        setup: null,
        debug: false,
        defaultTimeoutMs: 30_000,
        maxFrameSize: 1024,
        logLevel: 'silent',
      }),
    });
    await expect(server.listen()).rejects.toMatchObject({ code: 'DIOCP_ERR_COMMAND_RESOLVE', message: expect.stringContaining('Injected') });
  });
});
