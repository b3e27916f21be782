import { describe, expect, it } from 'vitest';
import { createServer } from '../../src/index.js';
import { fixtureHandlers } from '../fixtures/handlers.js';
import { fixturePool, silent, startServer } from '../fixtures/server.js';
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

describe('local-pool and a port that is taken', () => {
  it('fails to listen with DIOCP_ERR_TRANSPORT_LISTEN and stops its handler threads', async () => {
    const first = await startServer({ handlers: fixtureHandlers });
    try {
      const pool = fixturePool(1);
      const second = createServer({ handlers: fixtureHandlers, port: first.port, host: '127.0.0.1', transport: 'net', logger: silent, dispatcherInstance: pool });
      await expect(second.listen()).rejects.toMatchObject({ code: 'DIOCP_ERR_TRANSPORT_LISTEN' });
      // Its handler threads were stopped (before the fix, one stayed alive and kept the process up).
      const jobs = (pool as unknown as { pool: { stats(): { pool: { threads: number } } } }).pool;
      expect(jobs.stats().pool.threads).toBe(0);
    } finally {
      await first.close();
    }
  });
});
