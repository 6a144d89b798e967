// ESLint with typescript-eslint's type-aware rules over every TypeScript file and script of the
// repository. Formatting is prettier's job (`prettier --check .`), dead code and unused
// dependencies knip's (knip.jsonc).
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['dist/', 'result', 'result-*', '.demo-state/', 'bench/out/'] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: {
        // Types come from tsconfig.json; the plain-JavaScript scripts outside it get a default project.
        projectService: { allowDefaultProject: ['*.js', 'scripts/*.mjs', 'test/*/fixtures/*.mjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // A promise nobody awaits loses its rejection; one passed where a void callback is expected
      // (an event handler, a timer) does too. Both are in the recommended set: stated so they stay.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // Beyond the recommended set, from the strict one: a deprecated API is a change waiting to
      // break; a switch over a closed vocabulary (order types, outcomes) must name every member.
      '@typescript-eslint/no-deprecated': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      // `_name` marks a parameter an interface requires and this implementation does not use.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Numbers and booleans print as intended in a template; objects and unknowns stay errors.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      // Off: an `async` method without `await` implements a Promise-returning interface (Command.run,
      // Deliver) and turns a throw into a rejection, which is what its callers handle.
      '@typescript-eslint/require-await': 'off',
      // Off: the control characters in these patterns are the point (stripping them from untrusted
      // text before it reaches a log line, syslog or evidence).
      'no-control-regex': 'off',
    },
  },
  {
    // vitest types its asymmetric matchers (`expect.any`, `expect.stringMatching`, ...) as `any` on
    // purpose, so they fit any field of an expected value; placing one in an object literal is not
    // an unsafe assignment. Reading an untyped value (JSON.parse) is still caught by the member-access,
    // call and argument rules.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-unsafe-assignment': 'off' },
  },
  {
    // Plain JavaScript (the build scripts, the programs tests start inside network namespaces with
    // bare node) has no annotations, so every parameter is `any`: the no-unsafe-* rules would flag
    // each use. The rest (promises, unused names, undefined globals) still applies.
    files: ['**/*.js', '**/*.mjs'],
    rules: {
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
);
