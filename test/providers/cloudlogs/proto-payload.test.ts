/**
 * Decoding of `protoPayload` Anys into proto3 JSON (src/providers/cloudlogs/proto-payload.ts), on
 * payloads encoded by protobufjs from the official .proto files (as the fake Logging API sends
 * them).
 */
import path from 'node:path';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { decodeProtoPayload, PROTOS_DIR } from '../../../src/providers/cloudlogs/proto-payload.js';
import { AUDIT_LOG_TYPE_URL, encodeAuditLog } from '../../fixtures/cloudlogs/fake-logging.js';

// The error details are encoded from their own root, not the decoder's, so the test does not
// share that root's state.
const details = new protobuf.Root();
details.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : path.join(PROTOS_DIR, target));
details.loadSync('google/rpc/error_details.proto');

/** `{type_url, value}` as the client hands it, for an AuditLog. */
const auditAny = (log: Parameters<typeof encodeAuditLog>[0]) => ({ type_url: AUDIT_LOG_TYPE_URL, value: Buffer.from(encodeAuditLog(log)) });

/** A `google.protobuf.Any` (protobufjs object form) holding a `google.rpc.*` error detail. */
function detail(name: string, object: Record<string, unknown>) {
  const type = details.lookupType(`google.rpc.${name}`);
  return { type_url: `type.googleapis.com/google.rpc.${name}`, value: type.encode(type.fromObject(object)).finish() };
}

describe('decodeProtoPayload', () => {
  it('decodes an AuditLog into proto3 JSON: camelCase names in .proto order, int64 as strings, enums as names, well-known types mapped', () => {
    const result = decodeProtoPayload(
      auditAny({
        serviceName: 'iam.googleapis.com',
        methodName: 'google.iam.admin.v1.CreateServiceAccountKey',
        resourceName: 'projects/-/serviceAccounts/sa@proj-alpha.iam.gserviceaccount.com',
        numResponseItems: '12',
        authenticationInfo: { principalEmail: 'alice@example.com' },
        authorizationInfo: [
          {
            resource: 'projects/proj-alpha',
            permission: 'iam.serviceAccountKeys.create',
            granted: true,
            resourceAttributes: { labels: { env: 'prod' }, createTime: { seconds: '1767225601', nanos: 250_000_000 } },
          },
        ],
        requestMetadata: {
          callerIp: '203.0.113.7',
          callerSuppliedUserAgent: 'gcloud/500.0.0',
          requestAttributes: { time: { seconds: '1767225600', nanos: 123_456 } },
        },
        status: {
          code: 7,
          message: 'Permission denied',
          details: [
            detail('ErrorInfo', { reason: 'IAM_PERMISSION_DENIED', domain: 'iam.googleapis.com', metadata: { permission: 'x' } }),
            detail('RetryInfo', { retryDelay: { seconds: 1, nanos: 500_000_000 } }),
            { type_url: 'type.googleapis.com/acme.v1.Secretive', value: Buffer.from('opaque bytes') },
          ],
        },
        policyViolationInfo: { orgPolicyViolationInfo: { violationInfo: [{ constraint: 'c', policyType: 'BOOLEAN_CONSTRAINT' }] } },
        request: { '@type': 'type.googleapis.com/google.iam.admin.v1.CreateServiceAccountKeyRequest', name: 'k', nested: { list: [1, 'a', null, true, { z: [] }] }, empty: {} },
        response: {},
      }),
    );
    expect(result.ok).toBe(true);
    const payload = (result as { payload: Record<string, unknown> }).payload;
    expect(payload).toEqual({
      '@type': AUDIT_LOG_TYPE_URL,
      serviceName: 'iam.googleapis.com',
      methodName: 'google.iam.admin.v1.CreateServiceAccountKey',
      resourceName: 'projects/-/serviceAccounts/sa@proj-alpha.iam.gserviceaccount.com',
      numResponseItems: '12',
      status: {
        code: 7,
        message: 'Permission denied',
        details: [
          { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'IAM_PERMISSION_DENIED', domain: 'iam.googleapis.com', metadata: { permission: 'x' } },
          { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '1.500s' },
          { '@type': 'type.googleapis.com/acme.v1.Secretive' },
        ],
      },
      authenticationInfo: { principalEmail: 'alice@example.com' },
      authorizationInfo: [
        {
          resource: 'projects/proj-alpha',
          permission: 'iam.serviceAccountKeys.create',
          granted: true,
          resourceAttributes: { labels: { env: 'prod' }, createTime: '2026-01-01T00:00:01.250Z' },
        },
      ],
      policyViolationInfo: { orgPolicyViolationInfo: { violationInfo: [{ constraint: 'c', policyType: 'BOOLEAN_CONSTRAINT' }] } },
      requestMetadata: {
        callerIp: '203.0.113.7',
        callerSuppliedUserAgent: 'gcloud/500.0.0',
        requestAttributes: { time: '2026-01-01T00:00:00.000123456Z' },
      },
      request: { '@type': 'type.googleapis.com/google.iam.admin.v1.CreateServiceAccountKeyRequest', name: 'k', nested: { list: [1, 'a', null, true, { z: [] }] }, empty: {} },
      response: {},
    });
    expect(Object.keys(payload).slice(0, 4)).toEqual(['@type', 'serviceName', 'methodName', 'resourceName']);
    expect(JSON.stringify(payload)).not.toContain('opaque bytes');
  });

  it('reports a payload of another type as unknown, without decoding it', () => {
    expect(decodeProtoPayload({ type_url: 'type.googleapis.com/google.appengine.logging.v1.RequestLog', value: Buffer.from([0x0a, 0x01, 0x41]) })).toEqual({
      ok: false,
      typeUrl: 'type.googleapis.com/google.appengine.logging.v1.RequestLog',
      reason: 'unknown type',
    });
  });

  it('reports AuditLog bytes that do not decode as a failure, without throwing', () => {
    const bytes = encodeAuditLog({ serviceName: 'storage.googleapis.com', methodName: 'storage.objects.delete' });
    // A valid message, then a tag with wire type 7, which does not exist.
    const result = decodeProtoPayload({ type_url: AUDIT_LOG_TYPE_URL, value: Buffer.concat([bytes, Buffer.from([0x0f])]) });
    expect(result).toMatchObject({ ok: false, typeUrl: AUDIT_LOG_TYPE_URL, reason: 'decode failed', error: expect.any(Error) });
  });

  it('accepts the value as base64 text and an empty value', () => {
    const bytes = encodeAuditLog({ serviceName: 'compute.googleapis.com' });
    expect(decodeProtoPayload({ type_url: AUDIT_LOG_TYPE_URL, value: Buffer.from(bytes).toString('base64') })).toEqual({
      ok: true,
      payload: { '@type': AUDIT_LOG_TYPE_URL, serviceName: 'compute.googleapis.com' },
    });
    expect(decodeProtoPayload({ type_url: AUDIT_LOG_TYPE_URL, value: Buffer.alloc(0) })).toEqual({ ok: true, payload: { '@type': AUDIT_LOG_TYPE_URL } });
  });
});
