export { destinationTestSuite, type DestinationSuiteOptions } from './destination-suite.js';
export { storeTestSuite, type StoreSuiteOptions } from './store-suite.js';
export { testDatabaseUrl } from './test-database.js';
export type { TestFunction } from './test-function.js';
