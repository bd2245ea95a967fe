/**
 * The web console (`/console`) in a real headless Chromium (Debian's `chromium`, driven by
 * `playwright-core` through its `executablePath`; no browser download), against a real broker
 * listening on an ephemeral port: sign-in, grants with their filters and timeline, the pending L3
 * grant with its offline approve command, calls and receipts, the audit status, the task board;
 * an auditor is refused a change, an operator's revoke through the form stops the next agent call,
 * and a form posted without the CSRF token (or from another origin) is refused.
 * Screenshots of each page go to test/artifacts/console/ (not committed) for a person to look at.
 */
import { randomUUID } from 'node:crypto';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishCheckpointKey, writeCheckpoint } from '../../src/platform/audit/checkpoints.js';
import { chainHead } from '../../src/platform/audit/export.js';
import type { TestBroker } from '../helpers/harness.js';
import { bearer, createAsMain, startGrantsBroker, tokenFor } from '../grants/helpers.js';
import { launchChromium, postFromPage as postAt, shot, signIn as signInAt } from './browser.js';


let broker: TestBroker;
let browser: Browser;
let operator: string;
let auditor: string;
/** developer's L1 ops grant (active), security's L1 grant (active), main's L3 grant (pending). */
let devGrant: any;
let secGrant: any;
let l3Grant: any;

const read = (group: string) => broker.client(group).post('/v1/ext/calls', { action: 'ops.read', params: { resource: 'acme/api' } }, { idempotencyKey: randomUUID() });

beforeAll(async () => {
  broker = await startGrantsBroker();
  operator = await tokenFor(broker, 'operator', 'olga');
  auditor = await tokenFor(broker, 'auditor', 'ada');
  devGrant = await createAsMain(broker, { group: 'developer', level: 1, reason: 'read the API repo' });
  secGrant = await createAsMain(broker, { group: 'security', level: 1, reason: 'security reads' });
  l3Grant = await createAsMain(broker, { group: 'main', level: 3, ttl_s: 3600, allowed_actions: ['ops.deploy'], reason: 'deploy the API' });
  expect(l3Grant.status).toBe('pending_approval');
  expect((await read('developer')).status).toBe(200);
  expect((await broker.client('main').post('/v1/tasks', { title: 'Rotate the deploy key', type: 'BUG' })).status).toBe(201);
  const head = chainHead(broker.deps.db)!;
  publishCheckpointKey(broker.deps.config.checkpointDir, broker.deps.checkpointKey);
  await writeCheckpoint(broker.deps.config.checkpointDir, broker.deps.checkpointKey, { seq: head.seq, hash: head.hash, ts: new Date(broker.clock.now()).toISOString() });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await broker?.stop();
});

const url = (p: string) => new URL(p, broker.url).href;
const signIn = (token: string, viewport?: { width: number; height: number }) => signInAt(browser, broker.url, token, viewport);
const postFromPage = (page: Page, action: string, fields: Record<string, string>) => postAt(page, broker.url, action, fields);

describe('the console, as an auditor', () => {
  let page: Page;
  let context: BrowserContext;
  beforeAll(async () => {
    const anon = await browser.newContext();
    const login = await anon.newPage();
    const res = await login.goto(url('/console/grants'));
    expect(new URL(login.url()).pathname).toBe('/console/login');
    expect(res!.headers()['content-security-policy']).toContain("default-src 'none'");
    await shot(login, 'login.png');
    await anon.close();
    ({ context, page } = await signIn(auditor));
  });
  afterAll(() => context.close());

  it('signs in with a pasted token: an HttpOnly, SameSite=Strict cookie that expires with the token, and a strict CSP on every page', async () => {
    await expect(page.getByTestId('who').textContent()).resolves.toBe('ada');
    const cookie = (await context.cookies()).find((c) => c.name === 'console_session')!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', secure: false, path: '/console', value: auditor });
    const exp = (await broker.deps.tokens.verify(auditor)).expiresAt / 1000;
    expect(Math.abs(cookie.expires - exp)).toBeLessThanOrEqual(1);
    const res = await page.goto(url('/console'));
    const h = res!.headers();
    expect(h['content-security-policy']).toContain("default-src 'none'");
    expect(h['content-security-policy']).toContain("form-action 'self'");
    expect(h['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(h['x-content-type-options']).toBe('nosniff');
    expect(h['x-frame-options']).toBe('DENY');
    expect(h['cache-control']).toBe('no-store');
    await shot(page, 'home.png');
  });

  it('filters grants by group and state', async () => {
    await page.goto(url('/console/grants'));
    await expect(page.locator('tbody tr').count()).resolves.toBe(3);
    await page.getByLabel('Group').fill('developer');
    await page.getByLabel('State').selectOption('active');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/status=active/);
    const rows = await page.locator('tbody tr').allTextContents();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toContain(devGrant.id);
    expect(rows.join()).not.toContain(secGrant.id);
    await shot(page, 'grants.png');
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 } });
    await phone.addCookies((await context.cookies()).filter((c) => c.name === 'console_session'));
    const small = await phone.newPage();
    await small.goto(url('/console/grants?group=developer'));
    await shot(small, 'grants-phone.png');
    await phone.close();
  });

  it("opens a grant's timeline, with its calls, and sees no form that changes it", async () => {
    await page.goto(url('/console/grants?group=developer&status=active'));
    await page.getByRole('link', { name: devGrant.id }).click();
    await page.waitForURL(url(`/console/grants/${devGrant.id}`));
    const timeline = await page.getByTestId('timeline').textContent();
    expect(timeline).toContain('grant.created by main');
    expect(timeline).toContain('grant.activated by broker (note: on creation: this level needs no approval)');
    await expect(page.locator('dl.terms').textContent()).resolves.toContain(devGrant.digest);
    await expect(page.locator('table').textContent()).resolves.toContain('ops.read');
    await expect(page.locator('form[action$="/revoke"]').count()).resolves.toBe(0);
    await shot(page, 'grant.png');
  });

  it('sees the pending L3 grant with what is missing and its offline approve command', async () => {
    await page.goto(url('/console/approvals'));
    const card = page.getByTestId('pending-grant');
    await expect(card.count()).resolves.toBe(1);
    await expect(card.locator('h2').textContent()).resolves.toContain(l3Grant.id);
    await expect(card.textContent()).resolves.toContain(l3Grant.digest);
    await expect(page.getByTestId('missing').textContent()).resolves.toMatch(/^2 more approvals/);
    const command = await page.getByTestId('approve-command').textContent();
    expect(command).toContain(`broker approve --grant-file ${l3Grant.id}.json --key`);
    expect(command).toContain(`broker approve ${l3Grant.id} --jws`);
    await shot(page, 'approvals.png');
    const file = await page.request.get(url(`/console/grants/${l3Grant.id}/grant.json`));
    expect(file.status()).toBe(200);
    expect(await file.json()).toEqual((await bearer(broker, auditor, 'GET', `/v1/grants/${l3Grant.id}`)).body);
  });

  it('is refused a change: a revoke posted with a valid CSRF token is the API\'s 403, and the grant stays active', async () => {
    await page.goto(url(`/console/grants/${devGrant.id}`));
    const csrf = await page.locator('input[name=_csrf]').first().inputValue();
    const status = await postFromPage(page, `/console/grants/${devGrant.id}/revoke`, { _csrf: csrf, reason: 'auditors cannot' });
    expect(status).toBe(403);
    await expect(page.getByRole('alert').textContent()).resolves.toContain('forbidden');
    await shot(page, 'auditor-refused.png');
    expect((await bearer(broker, operator, 'GET', `/v1/grants/${devGrant.id}`)).body.status).toBe('active');
  });

  it('searches calls and lays out a receipt step by step', async () => {
    await page.goto(url('/console/calls'));
    await page.getByLabel('Group').fill('developer');
    await page.getByLabel('Action (prefix)').fill('ops.');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/action=ops/);
    await expect(page.locator('tbody tr').count()).resolves.toBe(1);
    await shot(page, 'calls.png');
    await page.locator('tbody tr a').first().click();
    await page.waitForURL(/\/console\/calls\/developer\//);
    const steps = await page.getByRole('list', { name: 'Decision steps' }).locator('li').allTextContents();
    expect(steps.some((s) => s.startsWith('grant') && s.includes('pass'))).toBe(true);
    expect(steps.some((s) => s.startsWith('execute'))).toBe(true);
    await shot(page, 'call.png');
  });

  it("shows the audit chain's status and a filterable trail", async () => {
    await page.goto(url('/console/audit?kind=grant.*'));
    const status = await page.getByTestId('chain-status').textContent();
    expect(status).toMatch(/yes: \d+ rows recomputed/);
    expect(status).toMatch(/signed .* s ago/);
    const kinds = await page.locator('tbody tr td:nth-child(3)').allTextContents();
    expect(kinds.length).toBeGreaterThan(0);
    expect(kinds.every((k) => k.startsWith('grant.'))).toBe(true);
    await shot(page, 'audit.png');
  });

  it('shows the task board by state', async () => {
    await page.goto(url('/console/tasks'));
    await expect(page.getByTestId('column-INBOX').textContent()).resolves.toContain('Rotate the deploy key');
    await expect(page.getByTestId('column-BLOCKED').count()).resolves.toBe(1);
    await shot(page, 'tasks.png');
  });
});

describe('the console, as an operator', () => {
  let page: Page;
  let context: BrowserContext;
  beforeAll(async () => {
    ({ context, page } = await signIn(operator));
  });
  afterAll(() => context.close());

  it('refuses a form posted without the CSRF token, and one posted from another origin', async () => {
    await page.goto(url(`/console/grants/${devGrant.id}`));
    const status = await postFromPage(page, `/console/grants/${devGrant.id}/revoke`, { reason: 'no token' });
    expect(status).toBe(403);
    await expect(page.getByRole('alert').textContent()).resolves.toContain('CSRF token');
    await shot(page, 'csrf-refused.png');
    const cookie = (await context.cookies()).find((c) => c.name === 'console_session')!;
    await page.goto(url(`/console/grants/${devGrant.id}`));
    const csrf = await page.locator('input[name=_csrf]').first().inputValue();
    const forged = await fetch(url(`/console/grants/${devGrant.id}/revoke`), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://evil.example', cookie: `console_session=${cookie.value}` },
      body: new URLSearchParams({ _csrf: csrf, reason: 'forged' }),
    });
    expect(forged.status).toBe(403);
    expect((await bearer(broker, operator, 'GET', `/v1/grants/${devGrant.id}`)).body.status).toBe('active');
    expect((await read('developer')).status).toBe(200);
  });

  it("revokes a grant through the form, and the agent's next call is refused", async () => {
    await page.goto(url(`/console/grants/${devGrant.id}`));
    await page.getByLabel(/Reason/).fill('incident 7: key leaked');
    await page.getByRole('button', { name: 'Revoke this grant' }).click();
    await page.waitForURL(/revoked=1/);
    await expect(page.getByRole('status').textContent()).resolves.toContain('revoked');
    const kinds = await page.getByTestId('timeline').locator('li strong').allTextContents();
    expect(kinds).toEqual(['grant.created', 'grant.activated', 'grant.revoked']);
    await expect(page.getByTestId('timeline').textContent()).resolves.toContain('grant.revoked by operator:olga (reason: incident 7: key leaked)');
    await shot(page, 'revoked.png');
    const grant = (await bearer(broker, operator, 'GET', `/v1/grants/${devGrant.id}`)).body;
    expect(grant).toMatchObject({ status: 'revoked', revoked_by: 'operator:olga', revoke_reason: 'incident 7: key leaked' });
    const denied = await read('developer');
    expect(denied.status).toBe(403);
    expect(denied.body.code).toBe('no_capability');
  });

  it('signs out: the cookie is gone and the pages send the browser back to sign-in', async () => {
    await page.goto(url('/console'));
    await page.getByRole('button', { name: 'Sign out' }).first().click();
    await page.waitForURL(url('/console/login'));
    expect((await context.cookies()).find((c) => c.name === 'console_session')).toBeUndefined();
    await page.goto(url('/console/grants'));
    expect(new URL(page.url()).pathname).toBe('/console/login');
  });
});
