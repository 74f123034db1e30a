// Lint configuration: typescript-eslint's recommended type-aware rules over every TypeScript file.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.tap/', 'coverage/', 'certs-test/out/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname }
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      eqeqeq: ['error', 'always'],
      'no-console': 'off'
    }
  },
  {
    // tap ends an async test when its promise settles, so `async t => { … }` without await is the idiom there.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/require-await': 'off' }
  },
  { files: ['**/*.mjs'], extends: [tseslint.configs.disableTypeChecked] }
)
