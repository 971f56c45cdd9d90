/**
 * The whole flow in one page, in a real headless Chromium: pick Row Changes on a table,
 * Activate, "make a change" (and a change from another session, as from another tab), see the
 * events arrive live, click one to make it the trigger data, run Insert Row and Query Rows with
 * {{trigger.new.…}}, reload the page (the trigger resumes), Deactivate: nothing left behind.
 */
import { jest } from '@jest/globals';
import { startPlayground, type Playground } from '../../playground/server.js';
import { openPlaygroundPage, type PlaygroundPage } from '../harness/browser.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { waitFor } from '../triggers/helpers.js';

jest.setTimeout(90_000);

const db = useTestDatabase('playground_trigger_panel', {
  beforeDrop: async () => {
    await browser?.close();
    await playground?.close();
  },
});
let playground: Playground;
let browser: PlaygroundPage;

beforeAll(async () => {
  await db.sql(`CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE NOT NULL, status text NOT NULL DEFAULT 'active')`);
  await db.sql(`CREATE TABLE audit_logs (id serial PRIMARY KEY, user_id integer NOT NULL, action text NOT NULL)`);
  playground = await startPlayground({ connection: db.config });
  browser = await openPlaygroundPage('trigger-panel');
}, 90_000);

/** row-changes' objects in the database, and the sessions that hold its LISTEN or its lease. */
async function leftovers(): Promise<unknown[]> {
  return db.sql(`
    SELECT 'schema ' || nspname AS o FROM pg_namespace WHERE nspname = 'pgactions'
    UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgname LIKE 'pg\\_actions\\_%'
    UNION ALL SELECT 'session ' || pid FROM pg_stat_activity
     WHERE datname = current_database() AND pid <> pg_backend_pid()
       AND (query ILIKE 'LISTEN%' OR query LIKE '%lease\\_until = pg\\_catalog.clock\\_timestamp()%')`);
}

async function eventTexts(): Promise<string[]> {
  return browser.page.getByTestId('trigger-event').allTextContents();
}

async function waitForEvents(count: number, timeoutMs = 20_000): Promise<string[]> {
  await waitFor(async () => (await eventTexts()).length >= count, `${count} event(s) on the page`, timeoutMs).catch(async (error: Error) => {
    throw new Error(`${error.message}; the panel shows: ${await browser.page.getByTestId('trigger-panel').textContent()}`);
  });
  return eventTexts();
}

test('pick Row Changes on users and Activate: the panel says it is waiting', async () => {
  const { page } = browser;
  await page.goto(playground.url);
  await page.locator('body[data-ready="true"]').waitFor();
  await page.getByTestId('trigger-picker').selectOption('row-changes');
  const table = page.getByTestId('trigger-input-tables');
  await table.locator('option[value="public.users"]').waitFor({ state: 'attached' });
  await table.selectOption('public.users');
  for (const op of ['INSERT', 'UPDATE', 'DELETE']) expect(await page.getByTestId(`trigger-input-operations-${op}`).isChecked()).toBe(true);
  await page.getByTestId('trigger-input-operations-DELETE').uncheck();
  await page.getByTestId('trigger-activate').click();
  await page.getByTestId('trigger-status').filter({ hasText: 'waiting for changes on public.users' }).waitFor();
  expect(await page.getByTestId('trigger-deactivate').isVisible()).toBe(true);
  expect(await page.getByTestId('trigger-picker').isDisabled()).toBe(true);
  expect(await leftovers()).toEqual(expect.arrayContaining([{ o: 'schema pgactions' }]));
});

test('"make a change" and a change from another session both arrive live', async () => {
  const { page } = browser;
  await page.getByTestId('trigger-change').click();
  await page.getByTestId('trigger-change-result').filter({ hasText: 'Inserted a row into public.users.' }).waitFor();
  const [first] = await waitForEvents(1);
  expect(first).toMatch(/^INSERT users\{"id":1\}/);
  // As from another tab: a plain UPDATE in another session.
  await db.sql(`UPDATE users SET status = 'vip' WHERE id = 1`);
  const texts = await waitForEvents(2);
  expect(texts[0]).toMatch(/^UPDATE users\{"id":1\}/); // newest first
  await browser.shot('07-trigger-events.png');
});

test('click an event: it becomes the trigger data, and Insert Row uses {{trigger.new.…}}', async () => {
  const { page } = browser;
  await page.getByTestId('trigger-event').nth(0).click();
  const data = JSON.parse(await page.getByTestId('trigger-data').inputValue());
  const [user] = await db.sql<{ name: string; email: string }>('SELECT name, email FROM users WHERE id = 1');
  expect(data).toEqual(expect.objectContaining({ op: 'UPDATE', table: 'users', key: { id: 1 }, new: expect.objectContaining({ id: 1, email: user!.email, status: 'vip' }) }));
  expect(data.old.status).toBe('active');
  await expect(page.getByTestId('trigger-used').textContent()).resolves.toBe('Trigger data is this event: use {{trigger.new.id}}, {{trigger.op}}… in the action.');

  await page.getByTestId('action-picker').selectOption('insert-row');
  const table = page.getByTestId('input-table');
  await table.locator('option[value="public.audit_logs"]').waitFor({ state: 'attached' });
  await table.selectOption('public.audit_logs');
  await page.getByTestId('columns-summary-columns').filter({ hasText: 'Required on insert (*): user_id, action.' }).waitFor();
  await page.getByTestId('add-columns').click();
  await page.getByTestId('add-columns').click();
  const rows = page.getByTestId('rows-columns').locator('.row');
  await rows.nth(0).getByTestId('column-name').selectOption('user_id');
  await rows.nth(0).getByTestId('column-value').fill('{{trigger.new.id}}');
  await rows.nth(1).getByTestId('column-name').selectOption('action');
  await rows.nth(1).getByTestId('column-value').fill('{{trigger.op}} {{trigger.new.status}}');
  await page.getByTestId('preview-value').nth(1).locator('td.value').filter({ hasText: '"UPDATE vip"' }).waitFor();

  await page.getByTestId('run').click();
  const output = page.getByTestId('run-output');
  await page.getByTestId('run-result').locator('[data-testid="run-output"], [data-testid="run-error"]').waitFor();
  expect(JSON.parse((await output.textContent())!)).toEqual({ insertedId: 1, rowCount: 1, row: { id: 1, user_id: 1, action: 'UPDATE vip' } });
  expect(await db.sql('SELECT user_id, action FROM audit_logs')).toEqual([{ user_id: 1, action: 'UPDATE vip' }]);
  expect(await eventTexts()).toHaveLength(2); // audit_logs is not watched
});

test('Query Rows with the older event as trigger data', async () => {
  const { page } = browser;
  await page.getByTestId('trigger-event').nth(1).click(); // the INSERT
  await page.getByTestId('action-picker').selectOption('query-rows');
  await page.getByTestId('input-query').fill('SELECT name, status FROM users WHERE email = {{trigger.new.email}}');
  for (const remove of await page.getByTestId('parameter-remove').all()) await remove.click();
  await page.getByTestId('preview-sql').filter({ hasText: 'SELECT name, status FROM users WHERE email = $1' }).waitFor();
  await page.getByTestId('run').click();
  await page.getByTestId('run-result').locator('[data-testid="run-output"], [data-testid="run-error"]').waitFor();
  const [user] = await db.sql<{ name: string }>('SELECT name FROM users WHERE id = 1');
  expect(JSON.parse((await page.getByTestId('run-output').textContent())!)).toEqual({ rows: [{ name: user!.name, status: 'vip' }], rowCount: 1 });
  await browser.shot('08-trigger-to-step.png', true);
});

test('a second tab takes the events over; the first one says so and can take them back', async () => {
  const { page } = browser;
  const tab = await page.context().newPage();
  try {
    await tab.goto(new URL('/', playground.url).href);
    await tab.locator('body[data-ready="true"]').waitFor();
    await tab.getByTestId('trigger-status').filter({ hasText: 'waiting for changes on public.users' }).waitFor();
    await page.getByTestId('trigger-status').filter({ hasText: 'Watched in another tab' }).waitFor();
    await tab.getByTestId('trigger-change').click();
    await tab.getByTestId('trigger-event').first().waitFor();
    expect(await tab.getByTestId('trigger-event').allTextContents()).toEqual([expect.stringMatching(/^INSERT users\{"id":2\}/)]);
    expect(await eventTexts()).toHaveLength(2); // not sent to the first tab

    await page.getByTestId('trigger-watch-here').click();
    await page.getByTestId('trigger-status').filter({ hasText: 'waiting for changes' }).waitFor();
    await tab.getByTestId('trigger-status').filter({ hasText: 'Watched in another tab' }).waitFor();
  } finally {
    await tab.close();
  }
});

test('a reloaded page resumes the active trigger; Deactivate leaves nothing in the database', async () => {
  const { page } = browser;
  await page.reload();
  await page.locator('body[data-ready="true"]').waitFor();
  await page.getByTestId('trigger-status').filter({ hasText: 'waiting for changes on public.users' }).waitFor();
  await db.sql(`INSERT INTO users (name, email) VALUES ('Grace', 'grace@example.com')`);
  const [latest] = await waitForEvents(1);
  expect(latest).toMatch(/^INSERT users\{"id":3\}/);

  await page.getByTestId('trigger-deactivate').click();
  await page.getByTestId('trigger-status').filter({ hasText: 'Deactivated' }).waitFor();
  expect(await page.getByTestId('trigger-activate').isVisible()).toBe(true);
  await waitFor(async () => (await leftovers()).length === 0, 'no object or session of the trigger').catch(async (error: Error) => {
    throw new Error(`${error.message}: ${JSON.stringify(await leftovers())}`);
  });
  expect(browser.problems).toEqual([]);
});

test('New Row (a polling trigger): the ordering column is offered from the table, a new row arrives within the poll interval', async () => {
  const { page } = browser;
  await page.getByTestId('trigger-picker').selectOption('new-row');
  const table = page.getByTestId('trigger-input-table');
  await table.locator('option[value="public.users"]').waitFor({ state: 'attached' });
  await table.selectOption('public.users');
  const column = page.getByTestId('trigger-input-column');
  await column.locator('option[value="email"]').waitFor({ state: 'attached' });
  expect(await column.inputValue()).toBe('id'); // the example's column, which the table has
  expect(await page.getByTestId('trigger-input-intervalSeconds').inputValue()).toBe('1');
  await page.getByTestId('trigger-activate').click();
  await page.getByTestId('trigger-status').filter({ hasText: 'waiting for changes on public.users' }).waitFor();
  const before = (await eventTexts()).length;
  await page.getByTestId('trigger-change').click();
  // new-row waits for older transactions to end (late commits): other test files' open transactions can delay it.
  const [newest] = await waitForEvents(before + 1, 90_000);
  const [row] = await db.sql<{ id: number }>('SELECT max(id) AS id FROM users');
  expect(newest).toMatch(new RegExp(`^INSERT users\\{"id":${row!.id}\\}`));
  await page.getByTestId('trigger-deactivate').click();
  await page.getByTestId('trigger-status').filter({ hasText: 'Deactivated' }).waitFor();
  expect((await (await fetch(new URL('/api/trigger-sessions', playground.url), { headers: { Authorization: `Bearer ${playground.token}` } })).json())).toEqual({ sessions: [] });
  expect(browser.problems).toEqual([]);
}, 150_000);
