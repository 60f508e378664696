/** @type {import('jest').Config} */
module.exports = {
  displayName: 'plugin-mptcp',
  testEnvironment: 'node',
  roots: ['<rootDir>/src'],
  testMatch: ['**/*.test.ts'],
  // Tests run against the TypeScript sources, not a possibly stale core/dist.
  moduleNameMapper: { '^@nuse/core$': '<rootDir>/../../core/src/index.ts' },
  transform: { '^.+\\.ts$': ['@swc/jest', require('../../jest.swc.js')] },
};
