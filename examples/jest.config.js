/** @type {import('jest').Config} */
module.exports = {
  displayName: 'examples',
  testEnvironment: 'node',
  roots: ['<rootDir>/src'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', require('../jest.swc.js')] },
};
