/**
 * Clean-up for the harness's afterAll hooks: every step runs even when one before it failed (no
 * pool left open, no server or folder left behind), then the first failure is thrown.
 */
export async function cleanUpInOrder(...steps: (() => unknown)[]): Promise<void> {
  const failures: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (error) {
      failures.push(error);
    }
  }
  if (failures.length > 0) throw failures[0];
}
