import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import react from 'eslint-plugin-react';
import reactHooks from 'eslint-plugin-react-hooks';
import reactRefresh from 'eslint-plugin-react-refresh';
import globals from 'globals';

export default defineConfig([
  globalIgnores(['dist/', 'coverage/', 'test-results/']),
  {
    files: ['**/*.{js,jsx,mjs}'],
    extends: [js.configs.recommended],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      parserOptions: { ecmaFeatures: { jsx: true } },
    },
  },
  {
    files: ['src/**/*.{js,jsx}'],
    extends: [reactHooks.configs.flat.recommended, reactRefresh.configs.vite],
    plugins: { react },
    languageOptions: { globals: globals.browser },
    rules: {
      // ESLint 9's no-unused-vars does not see `<Chart />` as a use of `Chart`; this rule marks
      // it, so an unused import of a component is still reported.
      'react/jsx-uses-vars': 'error',
      // A missing dependency is a stale-closure bug, not a style point: fail the lint on it.
      'react-hooks/exhaustive-deps': 'error',
    },
  },
  {
    // The e2e harness and the perf probe run in Node, and hand functions to page.evaluate()
    // that run in the browser; the Vite config runs in Node.
    files: ['e2e/**/*.mjs'],
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
  },
  {
    files: ['*.config.js', 'docker/**/*.mjs'],
    languageOptions: { globals: globals.node },
  },
]);
