/**
 * For `npm run test:mutation` only (a jest setup file of its Stryker runs): activates the mutant
 * under test before the modules under test load. Without it, "static" mutants — module-level
 * constants such as the SQLSTATE tables — were not active while the modules initialised under
 * ESM jest, and were reported as survivors that the tests in fact kill (stryker-js#6209).
 */
const id = process.env.__STRYKER_ACTIVE_MUTANT__;
if (id !== undefined) {
  const ns = globalThis.__stryker__ || (globalThis.__stryker__ = {});
  ns.activeMutant = id;
}
