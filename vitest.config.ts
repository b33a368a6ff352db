import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/fault needs the 3-broker Kafka: .ci/run runs it as its own step.
    exclude: process.env.INSTOCK_FAULT_TESTS === '1' ? [] : ['test/fault/**', 'node_modules/**'],
    // Integration tests share the real services started by `npm run services -- up`:
    // run files one after another so they do not fight over topics, keys and ports.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // The JSON report lets .ci/run print one plain 'N passed, N failed, N skipped' line.
    reporters: ['default', 'json'],
    outputFile: { json: '.instock/test-report.json' },
  },
});
