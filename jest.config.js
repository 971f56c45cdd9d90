/** Jest runs the TypeScript sources as native ES modules (p-timeout and friends are ESM-only). */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  // Sources import './x.js' (NodeNext style); map back to the .ts file under test.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true }] },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // npm run test:mutation works in copies of the project there
  modulePathIgnorePatterns: ['<rootDir>/.stryker-tmp/', '<rootDir>/.scratch/'],
  globalSetup: '<rootDir>/test/harness/global-setup.js',
  globalTeardown: '<rootDir>/test/harness/global-teardown.js',
  testTimeout: 30000,
  reporters: ['default', '<rootDir>/test/harness/summary-reporter.js'],
};
