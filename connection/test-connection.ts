/** "Test connection": connects, reads who and where we are, and says what to improve. */
import type pg from 'pg';
import { TimeoutError, withDeadline } from './deadline.js';
import { connect, configOf, failureContext } from './execute.js';
import { PgActionsError, toPgActionsError } from './errors/index.js';
import { quoteIdentifier } from './identifiers.js';

export interface ConnectionDiagnosis {
  ok: true;
  serverVersion: string;
  ssl: { enabled: boolean; protocol: string | null; cipher: string | null };
  user: string;
  database: string;
  /** Round trip of one trivial query on the established connection. */
  latencyMs: number;
  warnings: string[];
}
export type ConnectionTestResult = ConnectionDiagnosis | { ok: false; error: PgActionsError };

/** The oldest major version the suite runs against (npm run test:matrix: 12–18). */
const OLDEST_SUPPORTED = 120000;

const DIAGNOSIS_SQL = `SELECT current_setting('server_version') AS version,
       current_setting('server_version_num')::int AS version_num,
       current_user AS "user", current_database() AS database,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
       s.ssl, s.version AS protocol, s.cipher
  FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()`;

export interface DiagnosisRow {
  version: string;
  version_num: number;
  user: string;
  database: string;
  superuser: boolean;
  ssl: boolean;
  protocol: string | null;
  cipher: string | null;
}

export async function testConnection(connection: unknown): Promise<ConnectionTestResult> {
  try {
    const config = configOf(connection);
    const { client } = await connect(config);
    try {
      // A server (or network) that stops answering after the handshake must not hang the button.
      const answer = <T extends pg.QueryResultRow>(sql: string) => withDeadline(client.query<T>(sql), config.connectTimeoutMs);
      const started = performance.now();
      await answer('SELECT 1');
      const latencyMs = Math.round((performance.now() - started) * 100) / 100;
      const row = (await answer<DiagnosisRow>(DIAGNOSIS_SQL)).rows[0]!;
      client.release();
      return {
        ok: true,
        serverVersion: row.version,
        ssl: { enabled: row.ssl, protocol: row.protocol, cipher: row.cipher },
        user: row.user,
        database: row.database,
        latencyMs,
        warnings: warningsFor(row, config.sslMode, Boolean(config.sslCa)),
      };
    } catch (error) {
      client.release(true);
      // No answer to the diagnosis queries is a connection that never became usable.
      throw toPgActionsError(error, failureContext(config, error instanceof TimeoutError ? 'connect' : 'statement'));
    }
  } catch (error) {
    if (error instanceof PgActionsError) return { ok: false, error };
    throw error;
  }
}

/** Exported for its own test: the version warning needs a server older than any we can start. */
export function warningsFor(row: DiagnosisRow, sslMode: string, caGiven: boolean): string[] {
  const warnings: string[] = [];
  if (row.superuser) {
    warnings.push(
      `Connected as superuser "${row.user}". Flows should use a least-privilege role, for example: ` +
        `CREATE ROLE flow_user LOGIN PASSWORD '<new password>'; GRANT CONNECT ON DATABASE ${quoteIdentifier(row.database)} TO flow_user; ` +
        'GRANT USAGE ON SCHEMA public TO flow_user; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO flow_user;',
    );
  }
  if (!row.ssl) {
    warnings.push(`The connection is not encrypted (SSL Mode "${sslMode}"). Use SSL Mode "verify-full" (or at least "require") in production.`);
  } else if (sslMode === 'prefer' || sslMode === 'allow' || (sslMode === 'require' && !caGiven)) {
    warnings.push(`The connection is encrypted but the server certificate is not verified (SSL Mode "${sslMode}"). Use "verify-full" with the server's CA to rule out impostors.`);
  }
  if (row.version_num < OLDEST_SUPPORTED) {
    warnings.push(`PostgreSQL ${row.version} is older than 12, the oldest version pg-actions is tested against (12 to 18); upgrade the server, or check each step's output carefully.`);
  }
  return warnings;
}

