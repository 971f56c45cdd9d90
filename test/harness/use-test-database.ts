/**
 * A test file's own database as jest hooks (call it at the top of the file or of a describe):
 * beforeAll creates it on the suite's server (createTestDatabase, PG_TEST_URL), afterAll closes
 * the step's pools (closeAll) and drops it. The hooks run before the file's own ones declared
 * after the call: a file's beforeAll may fill the database, and its afterAll runs once the
 * database is gone (clean-up that needs the database or must precede closeAll goes in `beforeDrop`).
 */
import { closeAll } from '../../connection/index.js';
import { cleanUpInOrder } from './clean-up.js';
import { createTestDatabase, type TestDatabase } from './db.js';

export interface UseTestDatabaseOptions {
  /** Clean-up that must come first, before the pools are closed and the database dropped (roles, sessions, servers on it). */
  beforeDrop?: () => Promise<void> | void;
}

/** The database of this file (or describe): usable in hooks and tests from its beforeAll on. */
export function useTestDatabase(prefix: string, options: UseTestDatabaseOptions = {}): TestDatabase {
  let current: TestDatabase | undefined;
  const created = (): TestDatabase => {
    if (!current) throw new Error(`useTestDatabase('${prefix}'): the database exists only from its beforeAll on`);
    return current;
  };
  beforeAll(async () => {
    current = await createTestDatabase(prefix);
  }, 60_000);
  afterAll(() => cleanUpInOrder(() => options.beforeDrop?.(), closeAll, () => current?.drop()), 60_000);
  return {
    get name() {
      return created().name;
    },
    get config() {
      return created().config;
    },
    sql: ((text, values) => created().sql(text, values)) as TestDatabase['sql'],
    drop: () => created().drop(),
  };
}
