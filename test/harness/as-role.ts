/**
 * A connection of its own to a test database as another role (a table's or a type's owner, a
 * writer, a tenant), for the security tests: what that role can do, done as that role. Closed after.
 */
import pg from 'pg';
import type { ConnectionConfig } from '../../connection/index.js';

export async function asRole<T>(database: ConnectionConfig, user: string, password: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ ...database, ssl: false, user, password } as pg.ClientConfig);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
