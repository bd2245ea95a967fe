/**
 * One pagination style for every list: `limit` and an opaque `cursor` in, `{data, has_more,
 * next_cursor}` out. For each list route, walking a list longer than `limit` page by page gives
 * every row once, in the order of one big page; a cursor the list did not give is 422
 * `validation_failed` at `cursor`; the deprecated aliases (`starting_after`, `since`, `before`)
 * still page, and are refused beside a `cursor`. Most calls are made while the manual clock stands
 * still, so they share one `created_at` and only the cursor's tie-breakers keep them apart (the
 * deprecated `before` cannot: it pages by time only).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { runDispatchOnce } from '../../src/modules/kernel/service/dispatch.js';
import { bearer, tokenFor } from '../grants/helpers.js';
import { testProvider } from '../calls/provider.js';
import { call, grant, taskIn } from '../calls/helpers.js';
import { startBroker } from '../helpers/harness.js';

const broker = await startBroker({ providers: [testProvider().provider] });
afterAll(() => broker.stop());
const operator = await tokenFor(broker, 'operator', 'paging-olga');

/** Who asks: a signing group or the operator token. */
type Asker = { group: string } | 'operator';

async function get(who: Asker, path: string, query: Record<string, string | number | undefined>): Promise<{ status: number; body: any }> {
  if (who === 'operator') {
    const qs = new URLSearchParams(Object.entries(query).flatMap(([k, v]): [string, string][] => (v === undefined ? [] : [[k, String(v)]]))).toString();
    return bearer(broker, operator, 'GET', `${path}${qs ? `?${qs}` : ''}`);
  }
  return broker.client(who.group).get(path, { query });
}

/** Walks a list with `limit` and `cursor` until `has_more` is false; returns the rows' ids in order. */
async function walk(who: Asker, path: string, idOf: (row: any) => string, limit: number, filters: Record<string, string> = {}): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  for (;;) {
    const res = await get(who, path, { ...filters, limit, cursor });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.data.length).toBeLessThanOrEqual(limit);
    ids.push(...res.body.data.map(idOf));
    pages++;
    expect(pages).toBeLessThan(100);
    if (!res.body.has_more) {
      expect(res.body.next_cursor).toBeNull();
      return { ids, pages };
    }
    expect(res.body.next_cursor).toEqual(expect.any(String));
    cursor = res.body.next_cursor;
  }
}

interface ListCase {
  name: string;
  who: Asker;
  path: string;
  idOf: (row: any) => string;
  /** Filters that keep the walk to the rows this file made. */
  filters?: Record<string, string>;
  /** The deprecated alias: its name and the value to pass from a page (default: `next_cursor`). */
  alias: { name: string; from?: (page: any) => string };
  /** The largest `limit` (one page holds the whole list). */
  max: number;
}

const CASES: ListCase[] = [
  { name: 'tasks', who: { group: 'developer' }, path: '/v1/tasks', idOf: (t) => t.id, alias: { name: 'starting_after' }, max: 200 },
  { name: 'dispatches', who: { group: 'developer' }, path: '/v1/dispatches', idOf: (d) => d.id, alias: { name: 'starting_after' }, max: 200 },
  { name: 'grants', who: 'operator', path: '/v1/grants', idOf: (g) => g.id, alias: { name: 'starting_after' }, max: 500 },
  { name: 'token revocations', who: 'operator', path: '/v1/tokens/revocations', idOf: (r) => r.id, alias: { name: 'starting_after' }, max: 500 },
  { name: 'audit', who: 'operator', path: '/v1/audit', idOf: (a) => String(a.seq), filters: { kind: 'token.revoked' }, alias: { name: 'since', from: (p) => String(p.next_since) }, max: 1000 },
  { name: 'own calls', who: { group: 'developer' }, path: '/v1/ext/calls', idOf: (c) => `${c.group}/${c.request_id}`, alias: { name: 'before', from: (p) => p.data.at(-1).created_at }, max: 1000 },
  { name: 'all calls', who: 'operator', path: '/v1/calls', idOf: (c) => `${c.group}/${c.request_id}`, alias: { name: 'before', from: (p) => p.data.at(-1).created_at }, max: 1000 },
];

describe('setup', () => {
  it('makes more rows than a page holds in every list', async () => {
    for (let i = 0; i < 7; i++) await taskIn(broker, 'READY');
    await runDispatchOnce(broker.deps);
    for (const group of ['developer', 'main']) await grant(broker, { group, level: 1, allowed_actions: ['test.read'] });
    for (let i = 0; i < 5; i++) await grant(broker, { group: 'security', level: 1 });
    for (let i = 0; i < 7; i++) {
      const res = await bearer(broker, operator, 'POST', '/v1/tokens/revocations', { json: { jti: `paging-${i}`, reason: 'paging' } });
      expect(res.status).toBe(201);
    }
    // Seven calls of developer and three of main in the same millisecond, two of them under the
    // same request id: only request_id, then group, order them.
    for (let i = 0; i < 7; i++) expect((await call(broker, 'developer', { action: 'test.read' }, `k-${i}`)).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await call(broker, 'main', { action: 'test.read' }, `k-${i}`)).status).toBe(200);
    // Then two in a later millisecond: the first page of two, whose `before` is a clean cut.
    broker.clock.advance(1000);
    for (let i = 0; i < 2; i++) expect((await call(broker, 'developer', { action: 'test.read' }, `later-${i}`)).status).toBe(200);
  });
});

describe.each(CASES)('$name', (c) => {
  it('walks the whole list with cursor, no row twice and none left out, in the order of one page', async () => {
    const all = await get(c.who, c.path, { ...c.filters, limit: c.max });
    expect(all.status).toBe(200);
    expect(all.body.has_more).toBe(false);
    const expected = all.body.data.map(c.idOf);
    expect(expected.length).toBeGreaterThan(5);
    for (const limit of [1, 3]) {
      const { ids, pages } = await walk(c.who, c.path, c.idOf, limit, c.filters);
      expect(ids).toEqual(expected);
      expect(new Set(ids).size).toBe(ids.length);
      expect(pages).toBe(Math.ceil(expected.length / limit));
    }
  });

  it('refuses a cursor it did not give: 422 validation_failed at cursor', async () => {
    for (const cursor of ['garbage', Buffer.from('c1:sno').toString('base64url'), Buffer.from('c1:n-1').toString('base64url'), randomUUID()]) {
      const res = await get(c.who, c.path, { cursor });
      expect(res.status, cursor).toBe(422);
      expect(res.body).toMatchObject({ code: 'validation_failed', issues: [expect.objectContaining({ path: ['cursor'] })] });
    }
  });

  it(`still pages with the deprecated ${c.alias.name}, and refuses it beside a cursor`, async () => {
    const first = await get(c.who, c.path, { limit: 2 });
    const viaCursor = await get(c.who, c.path, { limit: 2, cursor: first.body.next_cursor });
    const viaAlias = await get(c.who, c.path, { limit: 2, [c.alias.name]: (c.alias.from ?? ((p) => p.next_cursor))(first.body) });
    expect(viaAlias.status).toBe(200);
    expect(viaAlias.body.data.map(c.idOf)).toEqual(viaCursor.body.data.map(c.idOf));
    const both = await get(c.who, c.path, { limit: 2, cursor: first.body.next_cursor, [c.alias.name]: (c.alias.from ?? ((p) => p.next_cursor))(first.body) });
    expect(both.status).toBe(422);
    expect(both.body.code).toBe('validation_failed');
  });
});
