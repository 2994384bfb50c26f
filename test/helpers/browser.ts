import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/**
 * Browser tests drive Debian's chromium (apt package `chromium`) through playwright-core: no
 * downloaded browser builds, headless, no network chatter of its own (sync, component updates,
 * QUIC) and a throwaway profile per launch. Screenshots go under test-artifacts/ (git-ignored,
 * kept by CI as artifacts).
 */
export const CHROMIUM = process.env.SE_CHROMIUM ?? '/usr/bin/chromium';
export const ARTIFACTS = resolve(import.meta.dirname, '..', '..', 'test-artifacts');

/** A reason to skip browser tests, or false when chromium is present. */
export function requireChromium(): string | false {
  return existsSync(CHROMIUM) ? false : `${CHROMIUM} not installed (apt-get install chromium)`;
}

/**
 * --no-sandbox: CI runs as root, where chromium refuses its sandbox. The rest stop chromium's own
 * network chatter, which this closed network refuses many connections at a time.
 */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A plain (non-persistent) headless browser, for tests that make their own contexts. */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, '--ignore-certificate-errors'] });
}

export interface TestBrowser {
  /** The one persistent context on the fresh profile (playwright needs launchPersistentContext for --user-data-dir). */
  context: BrowserContext;
  /** A new page with no cookies (a new sign-in), tablet-sized by default. */
  newPage(opts?: { width?: number; height?: number }): Promise<Page>;
  /** Full-page screenshot to test-artifacts/<area>/<name>.png; returns the path. */
  screenshot(page: Page, area: string, name: string): Promise<string>;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'se-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreHTTPSErrors: true,
    args: CHROMIUM_ARGS,
  });
  return {
    context,
    async newPage(o = {}) {
      for (const p of context.pages()) await p.close();
      await context.clearCookies();
      const page = await context.newPage();
      await page.setViewportSize({ width: o.width ?? 1024, height: o.height ?? 768 });
      return page;
    },
    async screenshot(page, area, name) {
      const dir = join(ARTIFACTS, area);
      mkdirSync(dir, { recursive: true });
      const path = join(dir, `${name}.png`);
      await page.screenshot({ path, fullPage: true });
      return path;
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
