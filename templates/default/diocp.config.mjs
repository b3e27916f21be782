// Configuration of the example app. Every key is documented in docs/config.md;
// command-line flags (diocp start --port 7002 ...) override what is here.
import { defineConfig } from '@diocp/core';

export default defineConfig({
  host: '127.0.0.1',
  port: 7001,
  transport: 'auto',
  // Handlers run on a pool of worker threads (one per core), off the I/O thread.
  // 'inline' runs them on the gateway's thread: fastest for trivial work.
  dispatch: 'local-pool',
  // Compiled handler modules: every exported @Command class in this folder is served.
  handlers: ['./dist/handlers'],
});
