/**
 * The request body's fast check (`isPlainCallRequest`) must accept only what the `CallRequest`
 * schema accepts, with the same data: anything else goes through zod for the answer and issues.
 */
import { describe, expect, it } from 'vitest';
import { CallRequest, isPlainCallRequest } from '../../src/broker/calls/service.js';

const bodies: unknown[] = [
  { action: 'test.read' },
  { action: 'test.read', params: { resource: 'acme/api' } },
  { action: 'test.read', params: null },
  { action: 'test.read', params: [1, 2] },
  { action: 'test.read', task_id: 'T1' },
  { action: 'test.read', params: {}, task_id: 'x'.repeat(128) },
  { action: 'x'.repeat(200) },
  { action: 'x'.repeat(201) },
  { action: '' },
  { action: 7 },
  { action: null },
  {},
  { params: {} },
  { action: 'test.read', task_id: '' },
  { action: 'test.read', task_id: 'x'.repeat(129) },
  { action: 'test.read', task_id: null },
  { action: 'test.read', task_id: 5 },
  { action: 'test.read', taskId: 'T1' },
  JSON.parse('{"action":"test.read","__proto__":{"x":1}}'),
  [],
  [{ action: 'test.read' }],
  null,
  'test.read',
  42,
  true,
];

describe('CallRequest fast check', () => {
  it.each(bodies.map((b) => [JSON.stringify(b), b]))('%s: accepted only when zod accepts it, with the same data', (_name, body) => {
    const zod = CallRequest.safeParse(body);
    if (isPlainCallRequest(body)) {
      expect(zod.success).toBe(true);
      expect(zod.data).toEqual(body);
    }
  });

  it('takes the common bodies without zod', () => {
    expect(isPlainCallRequest({ action: 'test.read', params: { resource: 'acme/api' } })).toBe(true);
    expect(isPlainCallRequest({ action: 'test.write', params: {}, task_id: 'T1' })).toBe(true);
  });
});
