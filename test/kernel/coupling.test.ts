import { afterAll, beforeAll, expect, it } from 'vitest';
import { findTaskForCoupling } from '../../src/modules/kernel/coupling.js';
import { startBroker, type TestBroker } from '../helpers/harness.js';
import { Kernel } from './helpers.js';

let broker: TestBroker;
beforeAll(async () => {
  broker = await startBroker({ listen: false });
});
afterAll(() => broker.stop());

it('gives the capability broker a task’s id, state and assigned group, or null', async () => {
  const k = new Kernel(broker);
  const t = await k.taskIn('DOING');
  expect(findTaskForCoupling(broker.deps.db, t.id)).toEqual({ id: t.id, state: 'DOING', assignedGroup: 'developer' });
  const inbox = await k.taskIn('INBOX');
  expect(findTaskForCoupling(broker.deps.db, inbox.id)).toEqual({ id: inbox.id, state: 'INBOX', assignedGroup: null });
  expect(findTaskForCoupling(broker.deps.db, '01ARZ3NDEKTSV4RRFFQ69G5FAV')).toBeNull();
  await k.move('developer', t, 'REVIEW');
  expect(findTaskForCoupling(broker.deps.db, t.id)?.state).toBe('REVIEW');
});
