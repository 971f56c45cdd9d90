/**
 * The playground in a real headless Chromium, the way a flow author uses it: test the connection,
 * build an Insert Row from pickers and trigger data, watch the preview, run it, then meet a
 * friendly error. Screenshots land in test-output/playground/ for a human to look at.
 */
import { jest } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { closeAll } from '../../index.js';
import { startPlayground, type Playground } from '../../playground/server.js';
import { findBrowser } from '../harness/browser.js';
import { createTestPki } from '../harness/certs.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { startClientCertServer } from '../harness/servers.js';
import { refusedPort } from '../harness/failures.js';
import { sshdMissing, startSshd } from '../harness/sshd.js';

const SCREENSHOTS = fileURLToPath(new URL('../../test-output/playground/', import.meta.url));

jest.setTimeout(60_000);

const db = useTestDatabase('playground_browser', {
  beforeDrop: async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await playground?.close();
  },
});
let playground: Playground;
let context: BrowserContext;
let page: Page;
let profile: string;
const pageProblems: string[] = [];

beforeAll(async () => {
  // The system's Chromium, or the one shipped in the @sparticuz/chromium package: never a skip.
  const browser = findBrowser();
  mkdirSync(SCREENSHOTS, { recursive: true });
  await db.sql(`CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE NOT NULL,
                status text NOT NULL DEFAULT 'active', created_at timestamptz NOT NULL DEFAULT now())`);
  playground = await startPlayground({ connection: db.config });
  profile = mkdtempSync(join(tmpdir(), 'pg-actions-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: browser.executablePath,
    args: browser.args,
    env: { ...process.env, ...browser.env },
    headless: true,
    viewport: { width: 1280, height: 800 },
  });
  page = context.pages()[0] ?? (await context.newPage());
  // CSP violations and script errors show up here; the page must have none.
  page.on('pageerror', (error) => pageProblems.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !/status of 4\d\d/.test(message.text())) pageProblems.push(`console: ${message.text()}`);
  });
}, 60_000);

const shot = (name: string, fullPage = false) => page.screenshot({ path: join(SCREENSHOTS, name), fullPage });

test('without the access token the page says how to get in', async () => {
  await page.goto(new URL('/', playground.url).href);
  await expect(page.getByTestId('page-error-code').textContent()).resolves.toBe('UNAUTHORIZED');
  await expect(page.getByTestId('page-error-fixes').textContent()).resolves.toContain('?token=');
});

test('opens the page and tests the saved connection', async () => {
  await page.goto(playground.url);
  await page.locator('body[data-ready="true"]').waitFor();
  // The token went into a cookie and out of the address bar.
  expect(page.url()).toBe(new URL('/', playground.url).href);
  await expect(page.getByTestId('conn-host').inputValue()).resolves.toBe(db.config.host);
  await expect(page.getByTestId('conn-password').inputValue()).resolves.toBe('');
  await expect(page.getByTestId('conn-password').getAttribute('placeholder')).resolves.toBe('saved on server');

  await page.getByTestId('test-connection').click();
  await page.getByTestId('connection-ok').waitFor();
  await expect(page.getByTestId('diagnosis-version').textContent()).resolves.toMatch(/^PostgreSQL \d+/);
  await expect(page.getByTestId('diagnosis-user').textContent()).resolves.toBe(`${db.config.user} on ${db.name}`);
  await expect(page.getByTestId('diagnosis-tls').textContent()).resolves.toMatch(/^(on|off)/);
  await shot('01-connection.png');
});

test('builds an Insert Row from the pickers and trigger data, with a live preview', async () => {
  await page.getByTestId('action-picker').selectOption('insert-row');
  const table = page.getByTestId('input-table');
  await table.locator('option[value="public.users"]').waitFor({ state: 'attached' });
  await table.selectOption('public.users');
  await expectText(page.getByTestId('columns-summary-columns'), 'Required on insert (*): name, email.');

  await page.getByTestId('add-columns').click();
  await page.getByTestId('add-columns').click();
  const rows = page.getByTestId('rows-columns').locator('.row');
  await rows.nth(0).getByTestId('column-name').selectOption('name');
  await rows.nth(0).getByTestId('column-value').fill('{{trigger.name}}');
  await rows.nth(1).getByTestId('column-name').selectOption('email');
  await rows.nth(1).getByTestId('column-value').fill('{{trigger.email}}');

  const sql = page.getByTestId('preview-sql');
  await expectText(sql, 'INSERT INTO "public"."users" ("name", "email") VALUES ($1, $2) RETURNING *');
  await expectText(page.getByTestId('preview-value').nth(1).locator('td.value'), '"ada@example.com"');

  // The preview follows the trigger data too.
  await page.getByTestId('trigger-data').fill('{\n  "name": "Ada",\n  "email": "ada.lovelace@example.com",\n  "ids": [1, 2]\n}');
  await expectText(page.getByTestId('preview-value').nth(1).locator('td.value'), '"ada.lovelace@example.com"');
  await shot('02-insert-preview.png');
});

test('runs it: the output shows insertedId and the row is in the database', async () => {
  await page.getByTestId('run').click();
  const output = await runResult('run-output');
  const shown = JSON.parse((await output.textContent())!);
  expect(shown).toEqual(expect.objectContaining({ insertedId: 1, rowCount: 1 }));
  expect(shown.row).toEqual(expect.objectContaining({ id: 1, name: 'Ada', email: 'ada.lovelace@example.com', status: 'active' }));
  expect(await db.sql('SELECT id, name, email FROM users')).toEqual([{ id: 1, name: 'Ada', email: 'ada.lovelace@example.com' }]);
  await shot('03-insert-output.png', true);
});

test('a broken query shows the friendly error title and its fixes', async () => {
  await page.getByTestId('action-picker').selectOption('query-rows');
  await page.getByTestId('input-query').fill('SELEC name FROM users');
  for (const remove of await page.getByTestId('parameter-remove').all()) await remove.click();
  await expectText(page.getByTestId('preview-sql'), 'SELEC name FROM users');

  await page.getByTestId('run').click();
  await runResult('run-error');
  await expect(page.getByTestId('run-error-title').textContent()).resolves.toBe('Syntax error in SQL query');
  await expect(page.getByTestId('run-error-code').textContent()).resolves.toBe('SYNTAX_ERROR');
  const fixes = await page.getByTestId('run-error-fixes').locator('li').allTextContents();
  expect(fixes.length).toBeGreaterThan(1);
  expect(fixes).toContain('Test the query in a database client first.');
  await shot('04-query-error.png', true);
});

test('a wrong password shows the authentication error with its fixes; the saved connection comes back', async () => {
  await page.getByTestId('conn-password').fill('not-the-password');
  await expect(page.getByTestId('connection-note').textContent()).resolves.toContain('Using the fields above');
  await page.getByTestId('test-connection').click();
  await page.getByTestId('connection-error').waitFor();
  await expect(page.getByTestId('connection-error-title').textContent()).resolves.toBe('Authentication failed');
  expect(await page.getByTestId('connection-error-fixes').locator('li').count()).toBeGreaterThan(1);
  await shot('05-connection-error.png');

  await page.getByTestId('reset-connection').click();
  await page.getByTestId('test-connection').click();
  await page.getByTestId('connection-ok').waitFor();
  expect(await page.content()).not.toContain(db.config.password!);
  expect(pageProblems).toEqual([]);
});

test('a server that logs in by client certificate: paste the CA, the certificate and the key', async () => {
  const certServer = await startClientCertServer();
  try {
    const pki = createTestPki();
    await page.getByTestId('conn-host').fill(certServer.host);
    await page.getByTestId('conn-port').fill(String(certServer.port));
    await page.getByTestId('conn-database').fill('postgres');
    await page.getByTestId('conn-user').fill(certServer.user);
    await page.getByTestId('conn-password').fill('');
    await page.getByTestId('conn-ssl-mode').selectOption('verify-full');
    await page.locator('#tls-files summary').click();
    await page.getByTestId('conn-ssl-ca').fill(pki.caPem);
    await page.getByTestId('conn-ssl-cert').fill(pki.clientCertPem);
    await page.getByTestId('conn-ssl-key').fill(pki.clientKeyPem);
    await page.getByTestId('test-connection').click();
    await page.getByTestId('connection-result').locator('[data-testid="connection-ok"], [data-testid="connection-error"]').waitFor();
    const shown = await page.getByTestId('connection-result').textContent();
    expect({ ok: await page.getByTestId('connection-ok').count(), shown }).toEqual({ ok: 1, shown: expect.any(String) });
    await expect(page.getByTestId('diagnosis-tls').textContent()).resolves.toMatch(/^on \(TLSv1\.[23]/);
    await expect(page.getByTestId('diagnosis-user').textContent()).resolves.toBe(`${certServer.user} on postgres`);
    await shot('06-client-certificate.png', true);
    expect(pageProblems).toEqual([]);
  } finally {
    await certServer.dispose();
  }
});

/** Clicks Test connection and returns the connection the page sent. */
async function testConnectionRequest(): Promise<Record<string, any>> {
  const sent = page.waitForRequest((request) => request.url().endsWith('/api/test-connection'));
  await page.getByTestId('test-connection').click();
  const body = (await sent).postDataJSON() as { connection: Record<string, any> };
  await page.getByTestId('connection-result').locator('[data-testid="connection-ok"], [data-testid="connection-error"]').waitFor();
  return body.connection;
}

async function backToSaved(): Promise<void> {
  if (await page.getByTestId('reset-connection').isVisible()) await page.getByTestId('reset-connection').click();
}

test('the pooler and SSH tunnel fields reach the request; the SSH errors show with their fixes', async () => {
  await backToSaved();
  const port = await refusedPort();
  const fingerprint = 'SHA256:' + 'Q'.repeat(43);
  await page.getByTestId('conn-pooler').selectOption('transaction');
  await page.locator('#ssh-tunnel summary').click();
  await page.getByTestId('conn-ssh-host').fill('127.0.0.1');
  await page.getByTestId('conn-ssh-port').fill(String(port));
  await page.getByTestId('conn-ssh-user').fill('tunnel');
  await page.getByTestId('conn-ssh-password').fill(' typed ssh password ');
  await page.getByTestId('conn-ssh-fingerprint').fill(fingerprint);
  const sent = await testConnectionRequest();
  expect(sent).toMatchObject({ host: db.config.host, pooler: 'transaction', sshTunnel: { host: '127.0.0.1', port, user: 'tunnel', password: ' typed ssh password ', hostKeyFingerprint: fingerprint } });
  await expect(page.getByTestId('connection-error-code').textContent()).resolves.toBe('SSH_HOST_UNREACHABLE');
  await expect(page.getByTestId('connection-error-fixes').textContent()).resolves.toContain('sshTunnel.host and sshTunnel.port');
  // A key and its passphrase go too; a key that is not one is refused naming the field.
  const notAKey = '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAnotakey\n-----END OPENSSH PRIVATE KEY-----';
  await page.getByTestId('conn-ssh-private-key').fill(notAKey);
  await page.getByTestId('conn-ssh-passphrase').fill('typed passphrase');
  const withKey = await testConnectionRequest();
  expect(withKey.sshTunnel).toMatchObject({ privateKey: notAKey, passphrase: 'typed passphrase' });
  await expect(page.getByTestId('connection-error-message').textContent()).resolves.toContain('connection.sshTunnel.privateKey');
  await shot('07-ssh-tunnel-error.png', true);
  await backToSaved();
  await expect(page.getByTestId('conn-pooler').inputValue()).resolves.toBe('none');
  await expect(page.getByTestId('conn-ssh-host').inputValue()).resolves.toBe('');
  expect(pageProblems).toEqual([]);
});

(sshdMissing() ? test.skip : test)('through a real sshd: Test connection shows the SSH host key, warns until it is pinned', async () => {
  const sshd = await startSshd();
  try {
    await backToSaved();
    await page.getByTestId('conn-password').fill(db.config.password!);
    await page.locator('#ssh-tunnel summary').click();
    await page.getByTestId('conn-ssh-host').fill(sshd.host);
    await page.getByTestId('conn-ssh-port').fill(String(sshd.port));
    await page.getByTestId('conn-ssh-user').fill(sshd.user);
    await page.getByTestId('conn-ssh-password').fill(sshd.password);
    await testConnectionRequest();
    await expect(page.getByTestId('diagnosis-ssh').textContent()).resolves.toBe(`${sshd.host}:${sshd.port}, host key ${sshd.fingerprint} (not verified)`);
    await expect(page.getByTestId('diagnosis-warnings').textContent()).resolves.toContain(`The SSH host key of ${sshd.host}:${sshd.port} is not verified`);
    expect(sshd.forwardsTo(Number(db.config.port))).toBeGreaterThanOrEqual(1);
    await page.getByTestId('conn-ssh-fingerprint').fill(sshd.fingerprint);
    await testConnectionRequest();
    await expect(page.getByTestId('diagnosis-ssh').textContent()).resolves.toBe(`${sshd.host}:${sshd.port}, host key ${sshd.fingerprint} (verified)`);
    await shot('08-ssh-tunnel.png', true);
    expect(await page.content()).not.toContain(sshd.password);
    expect(pageProblems).toEqual([]);
  } finally {
    await backToSaved();
    await closeAll();
    await sshd.dispose();
  }
});

/** Waits (through the debounced preview) until the element shows exactly `text`. */
async function expectText(locator: ReturnType<Page['getByTestId']>, text: string): Promise<void> {
  try {
    await locator.filter({ hasText: text }).waitFor({ timeout: 5000 });
  } catch {
    throw new Error(`expected ${JSON.stringify(text)}, the page shows ${JSON.stringify(await locator.textContent().catch(() => null))}`);
  }
  expect(await locator.textContent()).toBe(text);
}

/** Waits for the run to finish and fails with what the page shows when it is not `expected`. */
async function runResult(expected: 'run-output' | 'run-error') {
  const result = page.getByTestId('run-result');
  await result.locator('[data-testid="run-output"], [data-testid="run-error"]').waitFor({ timeout: 10_000 });
  const shown = result.getByTestId(expected);
  if ((await shown.count()) === 0) throw new Error(`expected ${expected}, the page shows: ${await result.textContent()}`);
  return shown;
}
