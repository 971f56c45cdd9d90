/**
 * The headless Chromium the browser tests drive: the system's when one is installed, otherwise
 * the one @sparticuz/chromium ships inside its npm package (no browser download, nothing from
 * the operating system), so `npm test` passes on a fresh machine. PG_TEST_BROWSER=bundled uses
 * the packaged one even when a system Chromium exists; PG_TEST_BROWSER=/path picks a binary.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliDecompressSync } from 'node:zlib';
import { chromium, type Page } from 'playwright-core';

const SCREENSHOTS = fileURLToPath(new URL('../../test-output/playground/', import.meta.url));

export interface Browser {
  executablePath: string;
  args: string[];
  env: Record<string, string>;
  /** Where it came from, for failure messages. */
  source: string;
}

const SYSTEM_BROWSERS = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];
const COMMON_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export function findBrowser(): Browser {
  const chosen = process.env.PG_TEST_BROWSER;
  const system = chosen && chosen !== 'bundled' ? chosen : chosen === 'bundled' ? undefined : SYSTEM_BROWSERS.find((path) => existsSync(path));
  if (system) return { executablePath: system, args: ['--headless', ...COMMON_ARGS], env: {}, source: system };
  return bundledBrowser();
}

/**
 * @sparticuz/chromium's brotli-packed headless shell, unpacked once per version into a folder of
 * our own (not its fixed /tmp/chromium), with the few shared libraries it needs (NSS, expat),
 * which it also ships, for machines that lack them.
 */
function bundledBrowser(): Browser {
  // Its exports map hides package.json: walk up from its entry point.
  let packageDir = dirname(createRequire(import.meta.url).resolve('@sparticuz/chromium'));
  while (!existsSync(join(packageDir, 'bin', 'chromium.br')) && dirname(packageDir) !== packageDir) packageDir = dirname(packageDir);
  const { version } = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { version: string };
  const folder = join(tmpdir(), `pg-actions-chromium-${version}`);
  const binary = join(folder, 'chromium');
  if (!existsSync(join(folder, '.complete'))) {
    const staging = `${folder}.${process.pid}`;
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { recursive: true });
    const unpack = (name: string) => brotliDecompressSync(readFileSync(join(packageDir, 'bin', name)));
    writeFileSync(join(staging, 'chromium'), unpack('chromium.br'), { mode: 0o755 });
    for (const archive of ['al2023.tar.br', 'fonts.tar.br', 'swiftshader.tar.br']) {
      const tar = join(staging, archive.replace(/\.br$/, ''));
      writeFileSync(tar, unpack(archive));
      execFileSync('tar', ['-xf', tar, '-C', staging]);
      rmSync(tar);
    }
    writeFileSync(join(staging, '.complete'), version);
    try {
      renameSync(staging, folder);
    } catch {
      rmSync(staging, { recursive: true, force: true }); // another worker was first
    }
  }
  return {
    executablePath: binary,
    // Its build is chrome-headless-shell, run as one process (as @sparticuz/chromium's own flags do).
    args: ['--single-process', '--no-zygote', ...COMMON_ARGS],
    env: { LD_LIBRARY_PATH: [join(folder, 'lib'), process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'), FONTCONFIG_PATH: join(folder, 'fonts') },
    source: `@sparticuz/chromium ${version} (unpacked in ${folder})`,
  };
}

export interface PlaygroundPage {
  page: Page;
  /** Script errors and CSP violations the page reported (4xx answers excepted): a test expects none. */
  problems: string[];
  /** A screenshot in test-output/playground/, for a human to look at. */
  shot(name: string, fullPage?: boolean): Promise<void>;
  close(): Promise<void>;
}

/** A headless Chromium page (fresh profile) for the playground's browser tests. */
export async function openPlaygroundPage(profilePrefix: string): Promise<PlaygroundPage> {
  const browser = findBrowser();
  mkdirSync(SCREENSHOTS, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), `pg-actions-${profilePrefix}-`));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: browser.executablePath,
    args: browser.args,
    env: { ...process.env, ...browser.env },
    headless: true,
    viewport: { width: 1280, height: 800 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !/status of 4\d\d/.test(message.text())) problems.push(`console: ${message.text()}`);
  });
  return {
    page,
    problems,
    shot: async (name, fullPage = false) => void (await page.screenshot({ path: join(SCREENSHOTS, name), fullPage })),
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
