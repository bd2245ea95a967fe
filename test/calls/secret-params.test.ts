/**
 * Secret-bearing call params: `POST /v1/ext/calls` whose params hold something shaped like a
 * credential is refused at step 2 with 422 `secret_in_input`, one case per detector kind, through
 * a real server. Nothing runs, the key is not used up, and neither the answer nor the audit trail
 * holds the value.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SecretKind } from '../../src/platform/audit/redact.js';
import { startBroker, type TestBroker } from '../helpers/harness.js';
import { auditKinds, call, grant } from './helpers.js';
import { PROVIDER_SECRET, testProvider, type TestProvider } from './provider.js';

let broker: TestBroker;
let tp: TestProvider;
beforeEach(async () => {
  tp = testProvider();
  broker = await startBroker({ providers: [tp.provider] });
  await grant(broker, { level: 1 });
});
afterEach(async () => {
  expect((await broker.verifyChain()).ok).toBe(true);
  await broker.stop();
});

/** One value per detector kind (built here, so no credential-shaped literal sits in the file whole). */
const SAMPLES: [SecretKind, string][] = [
  ['private_key', ['-----BEGIN RSA PRIVATE KEY-----', 'MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu', '-----END RSA PRIVATE KEY-----'].join('\n')],
  ['github_token', 'ghp_' + 'R4nd0mT0k3nV4lu3'.repeat(2) + 'abcd'],
  ['google_oauth_token', 'ya29.' + 'a0AfB_byC9xQ2mZk7Lp'],
  ['google_api_key', 'AIza' + 'SyD3x4mpl3K3yV4lu3Th4tIsL0ng3n0ugh1'],
  ['jwt', 'eyJhbGciOiJIUzI1NiJ9' + '.eyJzdWIiOiIxMjM0NTY3ODkwIn0' + '.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U'],
  ['api_token', 'xoxb' + '-1234567890-abcdefghij'],
  ['aws_access_key', 'AKIA' + 'IOSFODNN7EXAMPLE'],
  ['bearer_token', 'Bearer ' + 'mF_9.B5f-4.1JqMzZ3Xy'],
  ['credential_assignment', 'password=' + 'hunter2hunter2'],
  ['broker_secret', `see ${PROVIDER_SECRET} here`],
];

/** Every audit row, as text. */
const auditText = async () => JSON.stringify(await broker.auditRows());
const steps = (body: { receipt: { steps: { step: string; result: string }[] } }) => body.receipt.steps.map((s) => `${s.step}:${s.result}`);

describe('a call whose params hold a credential', () => {
  for (const [kind, value] of SAMPLES) {
    it(`is refused with 422 secret_in_input (${kind}), naming the path and kind, never the value`, async () => {
      const key = randomUUID();
      const res = await call(broker, 'developer', { action: 'test.read', params: { resource: value } }, key);
      expect(res.status).toBe(422);
      expect(res.body.code).toBe('secret_in_input');
      expect(res.body.secrets).toEqual([{ path: ['params', 'resource'], in: 'value', kind }]);
      expect(res.body.detail).toContain(`params.resource: ${kind}`);
      expect(res.body.receipt.decision).toBe('rejected');
      expect(steps(res.body)).toEqual(['signature:pass', 'request:fail']);
      expect(res.body.receipt.steps[1]).toEqual({ step: 'request', result: 'fail', note: 'secret_in_input' });
      expect(JSON.stringify(res.body)).not.toContain(value);
      expect(tp.attempts).toHaveLength(0);
      expect(await auditKinds(broker, 'developer', key)).toEqual(['call.rejected']);
      expect(await auditText()).not.toContain(value);
      expect(await broker.rows('SELECT CAST(count(*) AS INTEGER) AS n FROM ext_calls')).toEqual([{ n: 0 }]);
    });
  }

  it('is refused when a member name is the credential, before the schema refuses the member', async () => {
    const name = 'ghp_' + 'R4nd0mT0k3nV4lu3'.repeat(2) + 'abcd';
    const res = await call(broker, 'developer', { action: 'test.read', params: { resource: 'acme/api', nested: { [name]: 1 } } });
    expect(res.status).toBe(422);
    expect(res.body.secrets).toEqual([{ path: ['params', 'nested'], in: 'name', kind: 'github_token' }]);
    expect(JSON.stringify(res.body)).not.toContain(name);
    expect(await auditText()).not.toContain(name);
    expect(tp.attempts).toHaveLength(0);
  });

  it('does not use up the key: the same key with clean params runs', async () => {
    const key = randomUUID();
    const refusedRes = await call(broker, 'developer', { action: 'test.read', params: { resource: 'AKIA' + 'IOSFODNN7EXAMPLE' } }, key);
    expect(refusedRes.status).toBe(422);
    const ok = await call(broker, 'developer', { action: 'test.read', params: { resource: 'acme/api' } }, key);
    expect(ok.status).toBe(200);
    expect(tp.attemptsOf(key)).toBe(1);
    expect(await auditKinds(broker, 'developer', key)).toEqual(['call.rejected', 'call.claimed', 'call.succeeded']);
  });
});
