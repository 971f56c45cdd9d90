/**
 * The one-time set-up of docs/triggers/row-changes.md for an activating role that may not create
 * roles: a superuser makes the database's capture role, pgactions_capture_<database oid>, and lets
 * the activator SET ROLE to it.
 */
import type { TestDatabase } from '../harness/db.js';

/** The name of the capture role of db (REVIEW11 R169: one per database). */
export async function captureRoleOf(db: Pick<TestDatabase, 'sql'>): Promise<string> {
  const [{ oid }] = (await db.sql<{ oid: string }>(`SELECT oid::text AS oid FROM pg_database WHERE datname = current_database()`)) as [{ oid: string }];
  return `pgactions_capture_${oid}`;
}

export async function grantCaptureRole(db: Pick<TestDatabase, 'sql'>, activator: string): Promise<void> {
  const role = await captureRoleOf(db);
  await db.sql(`CREATE ROLE ${role} NOLOGIN`);
  const [{ version }] = (await db.sql<{ version: number }>(`SELECT current_setting('server_version_num')::int AS version`)) as [{ version: number }];
  await db.sql(version >= 160000 ? `GRANT ${role} TO ${activator} WITH INHERIT FALSE, SET TRUE` : `GRANT ${role} TO ${activator}`);
}
