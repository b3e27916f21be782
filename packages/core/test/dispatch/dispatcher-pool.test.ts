import { describe, expect, it } from 'vitest';
import { createServer } from '../../src/index.js';
import { fixtureHandlers } from '../fixtures/handlers.js';
import { fixturePool, silent } from '../fixtures/server.js';
import { dispatcherConformance } from './conformance.js';

dispatcherConformance('local-pool', () => fixturePool(2));


describe('local-pool configuration', () => {
  it('refuses to start without handler modules (classes cannot cross threads)', async () => {
    const server = createServer({ handlers: fixtureHandlers, dispatch: 'local-pool', port: 0, transport: 'net', logger: silent });
    await expect(server.listen()).rejects.toMatchObject({ code: 'DIOCP_ERR_CONFIG_INVALID', message: expect.stringMatching(/"handlers".*local-pool/) });
  });
});

describe('local-pool start-up', () => {
  it('stops the start when a thread cannot build its handler table (a missing DI token), as inline does', async () => {
    const server = createServer({
      handlers: fixtureHandlers,
      port: 0,
      transport: 'net',
      logger: silent,
      // No setup module: the 'greeting' token of the Injected handler is missing in the threads.
      dispatcherInstance: fixturePool(1, { setup: null, maxFrameSize: 1024 }),
    });
    await expect(server.listen()).rejects.toMatchObject({ code: 'DIOCP_ERR_COMMAND_RESOLVE', message: expect.stringContaining('Injected') });
  });
});
