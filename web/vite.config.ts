import type { ProxyOptions } from 'vite';
import solid from 'vite-plugin-solid';
import { defineConfig } from 'vitest/config';

const api = process.env.BACKUPS_API_URL ?? 'http://127.0.0.1:4000';

/**
 * /graphql over HTTP and WebSocket to the api. The dev server stands where nginx stands in
 * production, so the api sees its own origin (it refuses cookie sockets from other origins).
 */
const graphqlProxy: ProxyOptions = {
  target: api,
  ws: true,
  changeOrigin: true,
  configure(proxy) {
    proxy.on('proxyReqWs', (proxyReq) => proxyReq.setHeader('origin', new URL(api).origin));
    proxy.on('proxyReq', (proxyReq) => {
      if (proxyReq.getHeader('origin')) proxyReq.setHeader('origin', new URL(api).origin);
    });
  },
};

export default defineConfig({
  plugins: [solid()],
  server: { proxy: { '/graphql': graphqlProxy } },
  preview: { proxy: { '/graphql': graphqlProxy } },
  build: { outDir: 'dist', sourcemap: true },
  test: {
    environment: 'jsdom',
    setupFiles: ['./test/setup.ts'],
    include: ['test/**/*.test.{ts,tsx}'],
    // jsdom and user-event are slow on a 2-core machine running other suites too.
    testTimeout: 20_000,
    // scripts/dev/test collects every suite's counts from these JSON files.
    reporters: process.env.VITEST_JSON_OUT
      ? ['default', ['json', { outputFile: process.env.VITEST_JSON_OUT }]]
      : ['default'],
  },
});
