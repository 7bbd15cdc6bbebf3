/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test', '<rootDir>/shared/src', '<rootDir>/services'],
  testMatch: ['**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', diagnostics: false }] },
  moduleNameMapper: {
    '^@xcai/shared$': '<rootDir>/shared/src/index.ts',
    '^@xcai/shared/(.*)$': '<rootDir>/shared/$1',
  },
  testTimeout: 60000,
  maxWorkers: 2,
};
