/**
 * A real headless Chromium for the console tests (Debian's `chromium`, driven by `playwright-core`
 * through its `executablePath`; no browser download), and the steps every console test takes:
 * sign in through the form, post a form from inside a page, save a screenshot under
 * test/artifacts/console/ (not committed) for a person to look at.
 */
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { REPO_ROOT } from '../helpers/harness.js';

const CHROMIUM = '/usr/bin/chromium';
/** Where the console tests save their screenshots. */
export const ARTIFACTS = path.join(REPO_ROOT, 'test', 'artifacts', 'console');

/**
 * Launches headless Chromium.
 * @throws Error when Debian's chromium is missing: the console tests fail rather than skip.
 */
export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`The console tests need Debian's chromium at ${CHROMIUM} (apt-get install chromium; .ci/run installs it). It is missing, so these tests fail rather than skip.`);
  }
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Saves a full-page screenshot as test/artifacts/console/<name>. */
export function shot(page: Page, name: string): Promise<Buffer> {
  return page.screenshot({ path: path.join(ARTIFACTS, name), fullPage: true });
}

/** A fresh browser context on the broker at `base`, signed in with `token` through the sign-in form. */
export async function signIn(browser: Browser, base: string, token: string, viewport = { width: 1280, height: 900 }): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  await page.goto(new URL('/console', base).href);
  expect(new URL(page.url()).pathname).toBe('/console/login');
  await page.getByLabel('Bearer token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(new URL('/console', base).href);
  return { context, page };
}

/** Posts a form from inside the page (a real browser post, with its Origin and cookies), and answers the response's status. */
export async function postFromPage(page: Page, base: string, action: string, fields: Record<string, string>): Promise<number> {
  const target = new URL(action, base).href;
  const response = page.waitForResponse((r) => r.url() === target && r.request().method() === 'POST');
  await page.evaluate(
    ({ action, fields }) => {
      // Runs in the page (DOM types are not in this project's lib).
      const document = (globalThis as any).document;
      const form = document.createElement('form');
      form.method = 'post';
      form.action = action;
      for (const [name, value] of Object.entries(fields)) {
        const input = document.createElement('input');
        input.type = 'hidden';
        input.name = name;
        input.value = value;
        form.append(input);
      }
      document.body.append(form);
      form.submit();
    },
    { action, fields },
  );
  const status = (await response).status();
  await page.waitForLoadState();
  return status;
}
