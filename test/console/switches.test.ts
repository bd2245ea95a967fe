/**
 * The console's kill switches page in a real headless Chromium against a real broker: an operator
 * sets a switch for one group through the form and that group's next agent call is refused 503
 * `disabled_by_operator` naming the switch, while another group's call goes through; a second
 * submission of the same form sets no second switch; clearing it through its form lets the group
 * call again. An auditor sees the switches without any form, and a set posted from the page (with a
 * valid CSRF token) is the API's 403 with nothing set.
 */
import { randomUUID } from 'node:crypto';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestBroker } from '../helpers/harness.js';
import { createAsMain, startGrantsBroker, tokenFor } from '../grants/helpers.js';
import { launchChromium, postFromPage, shot, signIn } from './browser.js';

let broker: TestBroker;
let browser: Browser;
let operator: string;
let auditor: string;

const read = (group: string) => broker.client(group).post('/v1/ext/calls', { action: 'ops.read', params: { resource: 'acme/api' } }, { idempotencyKey: randomUUID() });
const url = (p: string) => new URL(p, broker.url).href;

beforeAll(async () => {
  broker = await startGrantsBroker();
  operator = await tokenFor(broker, 'operator', 'olga');
  auditor = await tokenFor(broker, 'auditor', 'ada');
  await createAsMain(broker, { group: 'developer', level: 1, reason: 'read the API repo' });
  await createAsMain(broker, { group: 'security', level: 1, reason: 'security reads' });
  expect((await read('developer')).status).toBe(200);
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await broker?.stop();
});

describe('kill switches in the console', () => {
  let context: BrowserContext;
  let page: Page;
  beforeAll(async () => {
    ({ context, page } = await signIn(browser, broker.url, operator));
  });
  afterAll(() => context.close());

  it("an operator sets a group's switch through the form: that group's next call is refused, another group's is not; a resubmission sets no second switch", async () => {
    await page.goto(url('/console/switches'));
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Kill switches');
    await expect(page.getByText('No switch is set: calls flow.').count()).resolves.toBe(1);
    const form = page.locator('form[action="/console/switches"]');
    const fields = {
      _csrf: await form.locator('input[name="_csrf"]').inputValue(),
      idempotency_key: await form.locator('input[name="idempotency_key"]').inputValue(),
    };
    await page.getByLabel('Scope').selectOption('group');
    await page.getByLabel('Target').fill('developer');
    await page.getByLabel('Reason', { exact: true }).fill('incident 7: developer agent loops');
    await page.getByRole('button', { name: 'Set switch' }).click();
    await page.waitForURL(/done=set/);
    await expect(page.getByRole('status').textContent()).resolves.toContain('set');
    const rows = page.locator('[data-testid^="switch-ksw_"]');
    await expect(rows.count()).resolves.toBe(1);
    await expect(rows.first().textContent()).resolves.toContain('incident 7');
    await shot(page, 'switches.png');

    const refused = await read('developer');
    expect(refused.status).toBe(503);
    expect((refused.body as any).code).toBe('disabled_by_operator');
    expect((refused.body as any).switch).toMatchObject({ scope: 'group', target: 'developer', reason: 'incident 7: developer agent loops', set_by: 'operator:olga' });
    expect((await read('security')).status).toBe(200);

    // The same form posted again (a double click, a reload) replays the first switch.
    await page.goto(url('/console/switches'));
    const again = await postFromPage(page, broker.url, '/console/switches', { ...fields, scope: 'group', target: 'developer', reason: 'incident 7: developer agent loops' });
    expect(again).toBe(303); // redirected to the list, as the first submission was
    await page.waitForURL(/done=set/);
    const listed = await broker.deps.stores.switches.list({ limit: 10 });
    expect(listed.rows.filter((s) => s.clearedAt === null)).toHaveLength(1);
  });

  it('clears the switch through its form with a reason, and the group calls again', async () => {
    await page.goto(url('/console/switches'));
    const id = (await page.locator('[data-testid^="switch-ksw_"]').first().getAttribute('data-testid'))!.slice('switch-'.length);
    await page.getByLabel(`Reason to clear ${id}`).fill('loop fixed');
    await page.getByRole('button', { name: 'Clear' }).click();
    await page.waitForURL(/done=cleared/);
    await expect(page.getByRole('heading', { name: 'Active (0)' }).count()).resolves.toBe(1);
    await expect(page.getByRole('heading', { name: 'Cleared (1)' }).count()).resolves.toBe(1);
    await shot(page, 'switches-cleared.png');
    expect((await read('developer')).status).toBe(200);
    const kinds = (broker.deps.db.sqlite.prepare("SELECT kind FROM gov_activities WHERE kind LIKE 'switch.%' ORDER BY seq").all() as { kind: string }[]).map((r) => r.kind);
    expect(kinds).toEqual(['switch.set', 'switch.cleared']);
  });
});

describe('kill switches, as an auditor', () => {
  it('sees the switches with no form, and a set posted with a valid CSRF token is the API 403 with nothing set', async () => {
    const { context, page } = await signIn(browser, broker.url, auditor);
    try {
      await page.goto(url('/console/switches'));
      await expect(page.locator('form[action="/console/switches"]').count()).resolves.toBe(0);
      await expect(page.getByText('Cleared (1)').count()).resolves.toBe(1);
      const csrf = await page.locator('header input[name="_csrf"]').first().inputValue();
      const status = await postFromPage(page, broker.url, '/console/switches', { _csrf: csrf, scope: 'all', reason: 'auditors cannot' });
      expect(status).toBe(403);
      await expect(page.getByRole('alert').textContent()).resolves.toContain('403');
      await shot(page, 'switches-auditor-refused.png');
      const listed = await broker.deps.stores.switches.list({ limit: 10 });
      expect(listed.rows.filter((s) => s.clearedAt === null)).toHaveLength(0);
      expect((await read('developer')).status).toBe(200);
    } finally {
      await context.close();
    }
  });
});
