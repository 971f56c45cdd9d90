export default async function globalTeardown() {
  await globalThis.__pgActionsTestServer?.stop();
}
