/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: '<rootDir>/spec/support/crash-oracle-environment.js',
  roots: ['<rootDir>/spec'],
  testMatch: ['**/*.spec.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testTimeout: 15000,
  reporters: ['default', '<rootDir>/spec/support/summary-reporter.js'],
};
