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
    rolldownOptions: {
      output: {
        // Chart.js in a file of its own, marked for eager compilation (Chromium's explicit compile
        // hints: https://v8.dev/blog/explicit-compile-hints): its functions are compiled while the
        // file streams in, off the main thread, instead of one by one when the first chart is
        // built. Compiled lazily, that first chart was a 60-110 ms task after load, about half of
        // it compiling. Only Chart.js: eager compilation of the rest (React, socket.io-client, the
        // app) made no measurable difference. Other browsers ignore the comment.
        codeSplitting: {
          groups: [{ name: 'charts', test: /[\\/]node_modules[\\/](chart\.js|react-chartjs-2|@kurkle[\\/]color)[\\/]/ }],
        },
        // After minification, which would drop it; it must be the file's first line.
        postBanner: (chunk) => (chunk.name === 'charts' ? '//# allFunctionsCalledOnLoad' : ''),
      },
    },
  },
  test: {
    environment: 'jsdom',
    setupFiles: ['./src/test/setup.js'],
    include: ['src/**/*.test.{js,jsx}'],
    restoreMocks: true,
    testTimeout: 10000,
  },
});
