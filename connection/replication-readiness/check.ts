/** One finding of the replication readiness check: a code, how bad, and the exact fix. */
export type ReplicationCheckCode =
  | 'WAL_LEVEL_NOT_LOGICAL'
  | 'NO_REPLICATION_PRIVILEGE'
  | 'NO_FREE_REPLICATION_SLOT'
  | 'NO_FREE_WAL_SENDER'
  | 'WAL_RETENTION_UNBOUNDED'
  | 'SLOT_LOST'
  | 'SLOT_AT_RISK'
  | 'SLOT_NOT_USABLE'
  | 'LEFTOVER_SLOT'
  | 'PUBLICATION_NOT_FOUND'
  | 'PUBLICATION_MISSING_TABLES'
  | 'CANNOT_CREATE_PUBLICATION'
  | 'TABLE_NOT_FOUND'
  | 'TABLE_WITHOUT_REPLICA_IDENTITY'
  | 'NO_SELECT_PRIVILEGE'
  | 'HEARTBEAT_TABLE_UNAVAILABLE'
  | 'REPLICATION_THROUGH_POOLER';

export interface ReplicationCheck {
  code: ReplicationCheckCode;
  /** 'failed' stops change capture; 'warning' works now but risks the server or the data. */
  level: 'failed' | 'warning';
  message: string;
  /** The exact SQL or settings that fix it, one step per entry. */
  fixes: string[];
}
