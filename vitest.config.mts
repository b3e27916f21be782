import { defineConfig } from 'vitest/config';

/**
 * The end-to-end files that run a second time on the native transport (@diocp/native-iocp):
 * test/fixtures/server.ts and the CLI tests read DIOCP_TEST_TRANSPORT.
 */
const onBothTransports = [
  'packages/core/test/gateway/gateway.e2e.test.ts',
  'packages/core/test/dispatch/dispatcher-inline.test.ts',
  'packages/core/test/dispatch/dispatcher-pool.test.ts',
  'packages/core/test/client/client.test.ts',
  'packages/core/test/cli/cli-server.test.ts',
];

export default defineConfig({
  test: {
    // Servers in tests listen on 127.0.0.1 ephemeral ports; files run in parallel, tests in a file serially.
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'main',
          include: ['packages/*/test/**/*.test.ts', 'templates/*/test/**/*.test.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'native',
          include: onBothTransports,
          env: { DIOCP_TEST_TRANSPORT: 'native' },
        },
      },
    ],
  },
});
