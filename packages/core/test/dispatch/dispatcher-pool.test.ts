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
