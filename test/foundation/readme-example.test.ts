/** The README's worked signing example, kept true: the same inputs give the same headers and base. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { signRequest } from '../../src/client/index.js';
import { parseSignature, signatureBase } from '../../src/http/signature.js';
import { REPO_ROOT } from '../helpers/harness.js';

describe('README worked example', () => {
  const secret = Buffer.from('AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8', 'base64url');
  const url = 'http://127.0.0.1:8787/v1/ext/calls';
  const body = '{"action":"github.get_repo","params":{"owner":"acme","repo":"api"}}';
  const headers = signRequest(
    { method: 'POST', url, headers: { 'content-type': 'application/json' }, body, idempotencyKey: 'req-2026-11-21-0001' },
    { keyid: 'developer:1', secret },
    1795226400,
  );
  const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');

  it('signs with the headers the README shows', () => {
    for (const name of ['content-digest', 'signature-input', 'signature'] as const) {
      const shown = new RegExp(`^${name}: (.+)$`, 'im').exec(readme)?.[1];
      expect(shown, name).toBe(headers[name]);
    }
  });

  it('builds the signature base the README shows', () => {
    const parsed = parseSignature(headers['signature-input']!, headers['signature']!, 'broker')!;
    const base = signatureBase({ method: 'POST', url, headers: new Headers(headers) }, parsed.components, parsed.innerList);
    const shown = /```text\n([\s\S]*?)\n```/.exec(readme)?.[1];
    expect(shown).toBe(base);
  });
});
