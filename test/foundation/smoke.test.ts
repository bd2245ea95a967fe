import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from '../helpers/harness.js';

describe('a real broker on an ephemeral port', () => {
  let broker: TestBroker;
  beforeAll(async () => {
    broker = await startBroker();
  });
  afterAll(() => broker.stop());

  it('answers a signed GET /v1/whoami with the group and key version', async () => {
    const res = await broker.client('developer').get('/v1/whoami');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ group: 'developer', key_version: 1, keyid: 'developer:1' });
  });

  it('reports liveness and readiness', async () => {
    expect((await fetch(`${broker.url}/health`)).status).toBe(200);
    const ready = await fetch(`${broker.url}/ready`);
    expect(ready.status).toBe(200);
  });
});
