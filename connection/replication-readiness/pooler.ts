/**
 * Change capture streams over a replication connection (START_REPLICATION), which a pooler does
 * not pool: PgBouncer before 1.23 refuses it, later ones pair it with a server connection of its
 * own. A CDC subscription therefore needs the server's own address, whatever the pool mode.
 */
import type { ResolvedConfig } from '../config.js';
import { PgActionsError } from '../errors/index.js';
import type { ReplicationCheck } from './check.js';

const FIXES = [
  'Give the change-capture trigger the address of the PostgreSQL server itself (its host and port, connection.pooler "none"); actions and polling triggers can keep the pooler address.',
  'pollTrigger of table-changes-cdc reads over plain SQL and works through a pooler, if the host cannot reach the server directly.',
];

/** The Test connection finding when the connection goes through a pooler (declared, or detected). */
export function poolerReplicationCheck(declared: ResolvedConfig['pooler'], detected: boolean): ReplicationCheck | undefined {
  if (declared === 'none' && !detected) return undefined;
  return {
    code: 'REPLICATION_THROUGH_POOLER',
    level: 'failed',
    message:
      (declared !== 'none' ? `connection.pooler is "${declared}"` : 'This connection reaches a connection pooler, not the server itself') +
      ': change data capture streams over a replication connection, which PgBouncer refuses (before 1.23) or never pools.',
    fixes: FIXES,
  };
}

/** The error subscribeTrigger gives for a replication connection through a pooler. */
export function replicationThroughPooler(declared: ResolvedConfig['pooler'], cause?: unknown): PgActionsError {
  return new PgActionsError('REPLICATION_THROUGH_POOLER', {
    message:
      (declared !== 'none' ? `connection.pooler is "${declared}"` : 'The connection pooler refused the replication connection') +
      ': streaming changes needs a replication connection to the server itself, which a pooler does not pass on or pool.',
    fixes: FIXES,
    cause,
  });
}
