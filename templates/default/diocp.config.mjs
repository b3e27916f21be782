// Configuration of the example app. Every key is documented in docs/config.md;
// command-line flags (diocp start --port 7002 ...) override what is here.
import { defineConfig } from '@diocp/core';

export default defineConfig({
  host: '127.0.0.1',
  port: 7001,
  transport: 'auto',
  dispatch: 'inline',
  // Compiled handler modules: every exported @Command class in this folder is served.
  handlers: ['./dist/handlers'],
});
