/**
 * The one-time set-up of docs/triggers/row-changes.md for an activating role that may not create
 * roles: a superuser makes pgactions_capture (other test files may have made it: the role is the
 * cluster's) and lets the activator SET ROLE to it.
 */
import type { TestDatabase } from '../harness/db.js';

export async function grantCaptureRole(db: Pick<TestDatabase, 'sql'>, activator: string): Promise<void> {
  await db.sql(`DO $$ BEGIN CREATE ROLE pgactions_capture NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$`);
  const [{ version }] = (await db.sql<{ version: number }>(`SELECT current_setting('server_version_num')::int AS version`)) as [{ version: number }];
  await db.sql(version >= 160000 ? `GRANT pgactions_capture TO ${activator} WITH INHERIT FALSE, SET TRUE` : `GRANT pgactions_capture TO ${activator}`);
}
