/** "Test connection": connects, reads who and where we are, and says what to improve. */
import type pg from 'pg';
import { TLSSocket } from 'node:tls';
import { TimeoutError, withDeadline } from './deadline.js';
import { connect, configOf, failureContext } from './execute.js';
import { PgActionsError, toPgActionsError } from './errors/index.js';
import { quoteIdentifier } from './identifiers.js';
import { diagnoseReplication, type ReplicationDiagnosis } from './replication-readiness/diagnose.js';
import { poolerReplicationCheck } from './replication-readiness/pooler.js';

export interface ConnectionDiagnosis {
  ok: true;
  serverVersion: string;
  ssl: { enabled: boolean; protocol: string | null; cipher: string | null };
  user: string;
  database: string;
  /** Round trip of one trivial query on the established connection. */
  latencyMs: number;
  /**
   * A connection pooler (PgBouncer or similar) answers instead of the server itself: the server
   * backend that ran the queries is not the one the connection was given. `ssl` then describes
   * the connection to the pooler.
   */
  pooler: boolean;
  /** Present when the connection goes through an SSH tunnel: the SSH server and the host key it presented. */
  sshTunnel?: { host: string; port: number; hostKeyFingerprint: string | null; hostKeyVerified: boolean };
  warnings: string[];
  /** With `changeCapture`: diagnoseReplication's checks for those tables, a pooler in the way first. */
  changeCapture?: ReplicationDiagnosis;
}

export interface TestConnectionOptions {
  /** A change-capture trigger (table-changes-cdc) is chosen: also check that this database is ready for it. */
  changeCapture?: { tables: string[]; publication?: string };
}
export type ConnectionTestResult = ConnectionDiagnosis | { ok: false; error: PgActionsError };

/** The oldest major version the suite runs against (npm run test:matrix: 12–18). */
const OLDEST_SUPPORTED = 120000;

const DIAGNOSIS_SQL = `SELECT pg_catalog.current_setting('server_version') AS version,
       pg_catalog.current_setting('server_version_num')::int AS version_num,
       current_user AS "user", pg_catalog.current_database() AS database,
       (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user) AS superuser,
       s.ssl, s.version AS protocol, s.cipher, pg_catalog.pg_backend_pid() AS pid
  FROM pg_catalog.pg_stat_ssl s WHERE s.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()`;

export interface DiagnosisRow {
  version: string;
  version_num: number;
  user: string;
  database: string;
  superuser: boolean;
  ssl: boolean;
  protocol: string | null;
  cipher: string | null;
  pid?: number;
}

export async function testConnection(connection: unknown, options: TestConnectionOptions = {}): Promise<ConnectionTestResult> {
  try {
    const config = configOf(connection);
    const { managed, client } = await connect(config);
    try {
      // A server (or network) that stops answering after the handshake must not hang the button.
      const answer = <T extends pg.QueryResultRow>(sql: string) => withDeadline(client.query<T>(sql), config.connectTimeoutMs);
      const started = performance.now();
      await answer('SELECT 1');
      const latencyMs = Math.round((performance.now() - started) * 100) / 100;
      const row = (await answer<DiagnosisRow>(DIAGNOSIS_SQL)).rows[0]!;
      // The key the connection got names the backend; a pooler hands out its own.
      const pooler = (client as unknown as { processID: number }).processID !== row.pid;
      const ssl = clientTls(client) ?? { enabled: false, protocol: null, cipher: null };
      client.release();
      const tunnel = config.sshTunnel && {
        host: config.sshTunnel.host,
        port: config.sshTunnel.port,
        hostKeyFingerprint: managed.tunnel?.fingerprint ?? null,
        hostKeyVerified: config.sshTunnel.hostKeyFingerprint !== undefined,
      };
      const result: ConnectionDiagnosis = {
        ok: true,
        serverVersion: row.version,
        ssl,
        user: row.user,
        database: row.database,
        latencyMs,
        pooler,
        ...(tunnel ? { sshTunnel: tunnel } : {}),
        warnings: [...(tunnel ? sshWarnings(tunnel) : []), ...warningsFor({ ...row, ssl: ssl.enabled }, config.sslMode, Boolean(config.sslCa), pooler)],
      };
      if (options.changeCapture) {
        const diagnosis = await diagnoseReplication(connection, { tables: options.changeCapture.tables, publication: options.changeCapture.publication });
        const refused = poolerReplicationCheck(config.pooler, pooler);
        result.changeCapture = refused ? { ...diagnosis, ready: false, checks: [refused, ...diagnosis.checks] } : diagnosis;
      }
      return result;
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

/** TLS as this end of the connection sees it (with a pooler, pg_stat_ssl would describe the pooler's own link). */
function clientTls(client: pg.PoolClient): ConnectionDiagnosis['ssl'] | undefined {
  const socket = (client as unknown as { connection: { stream: unknown } }).connection.stream;
  if (!(socket instanceof TLSSocket)) return undefined;
  return { enabled: true, protocol: socket.getProtocol(), cipher: socket.getCipher()?.name ?? null };
}

/** Like TLS without a CA: encrypted, but nothing proves the SSH server is the right one. */
function sshWarnings(tunnel: NonNullable<ConnectionDiagnosis['sshTunnel']>): string[] {
  if (tunnel.hostKeyVerified) return [];
  return [
    `The SSH host key of ${tunnel.host}:${tunnel.port} is not verified: it presented ${tunnel.hostKeyFingerprint ?? 'a key'}. ` +
      'Compare it with the fingerprint on the SSH server (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and put it in sshTunnel.hostKeyFingerprint, ' +
      'so that a server presenting another key is refused.',
  ];
}

/** Exported for its own test: the version warning needs a server older than any we can start. */
export function warningsFor(row: DiagnosisRow, sslMode: string, caGiven: boolean, pooler = false): string[] {
  const warnings: string[] = [];
  if (pooler) {
    warnings.push(
      'This is a connection pooler (PgBouncer or similar), not the server itself. Steps work as usual: each runs as its own transaction ' +
        'and pg-actions keeps nothing in the session between steps. Your own SQL must not rely on session state either: SET (use SET LOCAL), ' +
        'LISTEN, session advisory locks, temporary tables and named prepared statements do not carry over to the next step, and with ' +
        'transaction pooling they can reach other clients of the pooler. The SSL shown is the connection to the pooler.',
    );
  }
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

