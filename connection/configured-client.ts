/**
 * A connection is exactly its configuration. node-postgres fills what a configuration leaves
 * empty from the host process: PGPASSWORD, then PGPASSFILE / ~/.pgpass, and PGHOST, PGUSER,
 * PGOPTIONS, PGSSLNEGOTIATION, PGREPLICATION… A flow builder runs many authors' steps in one
 * process, so that would hand the host's password to whatever server a step names, or change
 * how a step connects. Nothing here reads the environment or a file (docs/security.md).
 */
import pg from 'pg';
import { PgActionsError } from './errors/index.js';

/** A pg.Client that uses its configuration and nothing else. */
export class ConfiguredClient extends pg.Client {
  constructor(config: pg.ClientConfig = {}) {
    const given = config.password;
    let client: ConfiguredClient | undefined;
    // A function, because pg replaces any falsy password (none, or "") with PGPASSWORD, then
    // reads ~/.pgpass when the server asks. Without one, the server gets nothing, as with libpq.
    const password = () => {
      if (typeof given === 'function') return given();
      if (given) return given;
      client?.connection.end();
      throw new PgActionsError('AUTHENTICATION_FAILED', {
        message: 'The server asked for a password and the connection has none.',
        fixes: [
          'Give the connection a password (pg-actions never takes one from PGPASSWORD or ~/.pgpass).',
          'If the server should not need one, check its pg_hba.conf rule for this user, database and client address.',
        ],
      });
    };
    // pg reads process.env only while constructing (ConnectionParameters), synchronously: it sees an empty one.
    const environment = process.env;
    process.env = {};
    try {
      super({ ...config, password });
    } finally {
      process.env = environment;
    }
    client = this;
  }
}
