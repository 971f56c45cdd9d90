/**
 * Several statements on one pooled session inside one transaction, for work that must be all or
 * nothing and cannot be one statement: installing or removing a trigger's objects. The session is
 * closed afterwards (DDL and locks must not follow it into a later step).
 */
import { withDeadline } from './deadline.js';
import { PgActionsError, toPgActionsError } from './errors/index.js';
import { configOf, connect, failureContext } from './execute.js';

export type Query = (text: string, values?: readonly unknown[]) => Promise<Record<string, unknown>[]>;

const GRACE_MS = 1000;

export async function inTransaction<T>(connection: unknown, work: (query: Query) => Promise<T>): Promise<T> {
  const config = configOf(connection);
  const { client } = await connect(config);
  const deadline = config.statementTimeoutMs + GRACE_MS;
  let current: { text: string; values?: readonly unknown[] } = { text: 'BEGIN' };
  const query: Query = async (text, values) => {
    current = { text, values };
    return (await withDeadline(client.query(text, values as unknown[] | undefined), deadline)).rows;
  };
  try {
    await query('BEGIN');
    const result = await work(query);
    await query('COMMIT');
    return result;
  } catch (error) {
    await withDeadline(client.query('ROLLBACK'), GRACE_MS).catch(() => undefined);
    if (error instanceof PgActionsError) throw error;
    throw toPgActionsError(error, { ...failureContext(config, 'statement'), query: current.text, parameters: current.values });
  } finally {
    client.release(true);
  }
}
