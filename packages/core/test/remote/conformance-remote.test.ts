// The shared dispatcher conformance suite in remote mode: the same fixture handlers, run by
// real `diocp worker` processes, one and three of them.
import { afterAll, beforeAll } from 'vitest';
import { dispatcherConformance } from '../dispatch/conformance.js';
import { fixtureWorkerConfig, RemoteWithWorkers, tempDir } from './helpers.js';

let dir = '';
let config = '';
let cleanup = async () => {};
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  config = await fixtureWorkerConfig(dir, { logLevel: 'warn' });
});
afterAll(() => cleanup());

dispatcherConformance('remote, 1 worker process', () => new RemoteWithWorkers(1, config, dir));
dispatcherConformance('remote, 3 worker processes', () => new RemoteWithWorkers(3, config, dir));
// A worker running its handlers on its own @diocp/jobs pool (the local-pool runner in threads).
dispatcherConformance('remote, 1 worker process with 2 handler threads', () => new RemoteWithWorkers(1, config, dir, {}, ['--threads', '2']));
