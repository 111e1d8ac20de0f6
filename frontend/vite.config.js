import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// One config for dev, preview and tests. PORT/HOST/BACKEND_URL come from the environment
// so the Makefile, the e2e harness and docker-compose can place the dashboard anywhere.
const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || '127.0.0.1';
const backend = process.env.BACKEND_URL || 'http://127.0.0.1:5000';

const proxy = {
  '/api': { target: backend, changeOrigin: false },
  '/socket.io': { target: backend, ws: true, changeOrigin: false },
};

const server = { port, host, strictPort: true, proxy };

export default defineConfig({
  plugins: [react()],
  server,
  preview: server,
  build: {
    target: 'es2022',
    chunkSizeWarningLimit: 700,
  },
  test: {
    environment: 'jsdom',
    setupFiles: ['./src/test/setup.js'],
    include: ['src/**/*.test.{js,jsx}'],
    restoreMocks: true,
    testTimeout: 10000,
  },
});
