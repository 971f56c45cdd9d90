import { tsImport } from 'tsx/esm/api';

export default async function globalTeardown() {
  await globalThis.__pgActionsTestServer?.stop();
  // The SSH tests' user logs in by password only while the suite runs.
  const { lockSshTestUser } = await tsImport('./sshd.ts', import.meta.url);
  lockSshTestUser();
}
