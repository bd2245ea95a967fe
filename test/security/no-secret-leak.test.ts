/**
 * After a full run through a real server (successes and failures, agent groups and an operator's
 * bearer token), no secret appears in any response, log line or audit row: not the master key,
 * not the token-signing key, not a group secret in any encoding.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signRequest } from '../../src/client/index.js';
import { startBroker, type TestBroker } from '../helpers/harness.js';

let broker: TestBroker;
const seen: string[] = [];
const bearerStatuses: number[] = [];

async function record(res: Response): Promise<void> {
  seen.push(JSON.stringify([...res.headers.entries()]), await res.text());
}

beforeAll(async () => {
  broker = await startBroker({ env: { BROKER_LOG_LEVEL: 'trace' } });
  const groups = [...broker.deps.groups.keys()];
  for (const group of groups) {
    const client = broker.client(group);
    for (const [method, p] of [['GET', '/v1/whoami'], ['GET', '/v1/tasks'], ['POST', '/v1/tasks'], ['GET', '/v1/grants'], ['GET', '/v1/ext/capabilities']] as const) {
      const res = await client.request(method, p, method === 'POST' ? { json: { title: 'leak check', type: 'OPS', priority: 'P2' } } : {});
      seen.push(JSON.stringify([...res.headers.entries()]), JSON.stringify(res.body));
    }
  }
  // An operator's bearer session: create and read grants, read the audit trail and calls.
  const { token } = await broker.deps.tokens.mint('operator', 'leak-check', 3600);
  const bearer = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const created = await fetch(`${broker.url}/v1/grants`, { method: 'POST', headers: { ...bearer, 'idempotency-key': 'leak-grant' }, body: JSON.stringify({ group: 'developer', provider: 'github', level: 1, reason: 'leak check' }) });
  bearerStatuses.push(created.status);
  await record(created);
  for (const p of ['/v1/grants', '/v1/audit', '/v1/calls']) {
    const res = await fetch(`${broker.url}${p}`, { headers: bearer });
    bearerStatuses.push(res.status);
    await record(res);
  }
  await broker.deps.keys.rotate('developer', 'operator:test');
  // Failures: a bad signature, a wrong key, a tampered body, a bad bearer token.
  const key = broker.deps.keys.current('developer');
  const url = `${broker.url}/v1/whoami`;
  await record(await fetch(url, { headers: { ...signRequest({ method: 'GET', url }, { keyid: key.keyid, secret: Buffer.alloc(32, 7) }, Math.floor(broker.clock.now() / 1000)) } }));
  await record(await fetch(url, { headers: { authorization: `Bearer ${key.secret.toString('base64url')}` } }));
  await record(await fetch(url, { method: 'POST', body: key.secret.toString('hex'), headers: { 'content-type': 'application/json' } }));
  await record(await fetch(`${broker.url}/metrics`));
  await record(await fetch(`${broker.url}/ready`));
});
afterAll(() => broker.stop());

describe('no secret leaves the host', () => {
  it('appears in no response, log line or audit row', () => {
    const master = fs.readFileSync(path.join(broker.dataDir, 'master.key'), 'utf8').trim();
    const tokenKey = (JSON.parse(fs.readFileSync(path.join(broker.dataDir, 'token.key'), 'utf8')) as { d: string }).d;
    const secrets = [master, Buffer.from(master, 'base64').toString('hex'), tokenKey];
    for (const group of broker.deps.groups.keys()) {
      for (let version = 1; version <= broker.deps.keys.current(group).version; version++) {
        const s = broker.deps.keys.lookup(`${group}:${version}`)!.secret;
        secrets.push(s.toString('base64url'), s.toString('base64'), s.toString('hex'));
      }
    }
    const audit = broker.deps.db.sqlite.prepare('SELECT * FROM gov_activities').all();
    const haystacks = { responses: seen.join('\n'), logs: broker.logs.join(''), audit: JSON.stringify(audit) };
    expect(bearerStatuses).toEqual([201, 200, 200, 200]);
    expect(seen.length).toBeGreaterThanOrEqual(20);
    expect(broker.logs.length).toBeGreaterThanOrEqual(20);
    for (const [where, text] of Object.entries(haystacks)) {
      for (const secret of secrets) expect(text.includes(secret), `${where} contains a secret`).toBe(false);
    }
  });
});
