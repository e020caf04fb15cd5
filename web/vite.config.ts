import solid from 'vite-plugin-solid';
import { defineConfig } from 'vitest/config';

const api = process.env.BACKUPS_API_URL ?? 'http://127.0.0.1:4000';

export default defineConfig({
  plugins: [solid()],
  server: {
    proxy: {
      '/graphql': { target: api, ws: true, changeOrigin: true },
    },
  },
  preview: {
    proxy: {
      '/graphql': { target: api, ws: true, changeOrigin: true },
    },
  },
  build: { outDir: 'dist', sourcemap: true },
  test: {
    environment: 'jsdom',
    setupFiles: ['./test/setup.ts'],
    include: ['test/**/*.test.{ts,tsx}'],
  },
});
