/**
 * What a step's backend is doing, read from pg_stat_activity. Always filtered by database and by
 * the step's application_name (or pid), so against a shared PG_TEST_URL server a test never sees,
 * or kills, anybody else's session.
 */
import { eventually } from './failures.js';

/** Runs SQL as an admin on the suite's server (TestDatabase.sql, or a pg.Client's rows). */
export type AdminSql = (text: string, values?: unknown[]) => Promise<Record<string, unknown>[]>;

export interface Backend {
  pid: number;
  state: string | null;
  query: string;
}

/** The backends of `database` whose application_name is `applicationName` (the step's pool). */
export async function backendsOf(sql: AdminSql, database: string, applicationName: string): Promise<Backend[]> {
  const rows = await sql(
    'SELECT pid, state, query FROM pg_stat_activity WHERE datname = $1 AND application_name = $2 AND pid <> pg_backend_pid() ORDER BY pid',
    [database, applicationName],
  );
  return rows as unknown as Backend[];
}

/** The step backend running a statement that contains `marker` (waits until it runs). */
export async function runningStatement(sql: AdminSql, database: string, applicationName: string, marker: string, timeoutMs = 10_000): Promise<Backend> {
  let found: Backend | undefined;
  const seen = await eventually(async () => {
    found = (await backendsOf(sql, database, applicationName)).find((b) => b.state === 'active' && b.query.includes(marker));
    return found !== undefined;
  }, timeoutMs);
  if (!seen || !found) throw new Error(`no backend of ${database}/${applicationName} ran a statement containing ${marker}`);
  return found;
}

/**
 * Whether backend `pid` stopped running (idle, or gone) within `timeoutMs`: the server itself no
 * longer executes the statement. Returns the last state seen for the failure message.
 */
export async function stoppedRunning(
  sql: AdminSql,
  database: string,
  pid: number,
  timeoutMs: number,
  until: 'idle or gone' | 'gone' = 'idle or gone',
): Promise<{ stopped: boolean; state: string }> {
  let state = 'unknown';
  const stopped = await eventually(async () => {
    const rows = await sql('SELECT state FROM pg_stat_activity WHERE datname = $1 AND pid = $2', [database, pid]);
    state = rows.length === 0 ? 'gone' : String(rows[0]!.state);
    return until === 'gone' ? state === 'gone' : state !== 'active';
  }, timeoutMs);
  return { stopped, state };
}

/** Ends whatever a test left running under this application_name (cleanup; never others' sessions). */
export async function terminateBackendsOf(sql: AdminSql, database: string, applicationName: string): Promise<void> {
  await sql('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2 AND pid <> pg_backend_pid()', [
    database,
    applicationName,
  ]);
}
