import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'templates/*/test/**/*.test.ts'],
    // Servers in tests listen on 127.0.0.1 ephemeral ports; files run in parallel, tests in a file serially.
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: 'forks',
  },
});
