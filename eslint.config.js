// Lints workflow code for what breaks determinism: Node built-ins (I/O, timers outside the SDK,
// crypto) and promises nobody awaits.
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((name) => `node:${name}`)];

export default tseslint.config({
  files: ['workflows/**/*.ts'],
  extends: [tseslint.configs.base],
  languageOptions: {
    parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
  },
  rules: {
    '@typescript-eslint/no-floating-promises': 'error',
    '@typescript-eslint/no-misused-promises': 'error',
    'no-restricted-imports': [
      'error',
      {
        paths: nodeBuiltins.map((name) => ({ name, message: 'Workflows must not use Node built-ins; do I/O in an activity.' })),
        patterns: [
          { group: ['**/activities/**'], message: 'Workflows import activity types only.', allowTypeImports: true },
          { group: ['**/db/**', '**/api/**', '**/apps/**', 'got', 'pg', '@mikro-orm/*'], message: 'Workflows must not import I/O code.' },
        ],
      },
    ],
    'no-restricted-globals': [
      'error',
      { name: 'setTimeout', message: 'Use sleep() or condition() from @temporalio/workflow.' },
      { name: 'setInterval', message: 'Use sleep() in a loop.' },
      { name: 'fetch', message: 'Do HTTP in an activity.' },
    ],
    'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'Use uuid4() from @temporalio/workflow, or draw randomness in an activity.' }],
  },
});
