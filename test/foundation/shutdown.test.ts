/**
 * Graceful stop (what SIGTERM runs, see `runBroker`): the server stops accepting connections,
 * a call already in flight finishes and is answered, and only then does the stop resolve.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grant } from '../calls/helpers.js';
import { testProvider, type TestProvider } from '../calls/provider.js';
import { startBroker, type TestBroker } from '../helpers/harness.js';

let broker: TestBroker;
let tp: TestProvider;

beforeAll(async () => {
  tp = testProvider();
  broker = await startBroker({ providers: [tp.provider] });
  await grant(broker, { level: 1 });
});
afterAll(() => broker.stop());

describe('graceful stop', () => {
  it('finishes the request in flight, refuses new connections, then resolves', async () => {
    const inFlight = broker.client('developer').post('/v1/ext/calls', { action: 'test.read', params: { wait: true } }, { idempotencyKey: 'drain-1' });
    await tp.untilWaiting(1);

    let stopped = false;
    const stopping = broker.server!.stop(10_000).then(() => (stopped = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(stopped).toBe(false);
    await expect(fetch(`${broker.url}/health`)).rejects.toThrow();

    tp.release();
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ request_id: 'drain-1', status: 'succeeded' });
    await stopping;
    expect(stopped).toBe(true);
    expect(tp.attemptsOf('drain-1')).toBe(1);
  });
});
