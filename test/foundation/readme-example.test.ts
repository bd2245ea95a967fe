/**
 * The documentation's examples, kept true: the worked signing example of docs/signing.md gives the
 * same headers and base; the README walk-through's grant examples, run against a real broker,
 * grant what they say (the HTTP example the same terms as the CLI one); the README's shell signing
 * example runs with Node alone.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signRequest } from '../../src/client/index.js';
import { parseSignature, signatureBase } from '../../src/protocol/signature.js';
import { exportSecretFile } from '../../src/modules/identity/keys.js';
import { REPO_ROOT, startBroker, tempDir, type TestBroker } from '../helpers/harness.js';
import { runCli } from '../helpers/process.js';

describe('docs/signing.md worked example', () => {
  const secret = Buffer.from('AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8', 'base64url');
  const url = 'http://127.0.0.1:8787/v1/ext/calls';
  const body = '{"action":"github.get_repo","params":{"owner":"acme","repo":"api"}}';
  const headers = signRequest(
    { method: 'POST', url, headers: { 'content-type': 'application/json' }, body, idempotencyKey: 'req-2026-11-21-0001' },
    { keyid: 'developer:1', secret },
    1795226400,
  );
  const signing = fs.readFileSync(path.join(REPO_ROOT, 'docs', 'signing.md'), 'utf8');

  it('signs with the headers the page shows', () => {
    for (const name of ['content-digest', 'signature-input', 'signature'] as const) {
      const shown = new RegExp(`^${name}: (.+)$`, 'im').exec(signing)?.[1];
      expect(shown, name).toBe(headers[name]);
    }
  });

  it('builds the signature base the page shows', () => {
    const parsed = parseSignature(headers['signature-input']!, headers['signature']!, 'broker')!;
    const base = signatureBase({ method: 'POST', url, headers: new Headers(headers) }, parsed.components, parsed.innerList);
    const shown = /```text\n([\s\S]*?)\n```/.exec(signing)?.[1];
    expect(shown).toBe(base);
  });
});

/** The README's shell examples, run against a real broker: each grant example grants what it says. */
describe('README walk-through examples', () => {
  const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  let broker: TestBroker;
  let env: Record<string, string>;
  beforeAll(async () => {
    broker = await startBroker();
    env = { BROKER_DATA_DIR: broker.dataDir, BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies') };
  });
  afterAll(() => broker.stop());

  /** A `broker …` command line of the README as sh splits it: continuation lines joined, single quotes removed. */
  const words = (command: string) => [...command.replace(/\\\n/g, ' ').matchAll(/'([^']*)'|(\S+)/g)].map((t) => t[1] ?? t[2]!);
  /** `grants create …` with its continuation lines; `m[1]` is the command after `npm run -s broker --`. */
  const GRANTS_CREATE = /npm run -s broker -- (grants create (?:[^\n]*\\\n)*[^\n]*)/g;
  /** Every `broker grants create …` example, as arguments. */
  const cliGrants = [...readme.matchAll(GRANTS_CREATE)].map((m) => words(m[1]!));

  /** Runs one `grants create` example with the real CLI on the broker's data directory; its grant. */
  async function runGrantExample(args: string[]): Promise<Record<string, any>> {
    const run = await runCli(args, env);
    expect(run.code, run.stderr).toBe(0);
    return JSON.parse(run.stdout) as Record<string, any>;
  }

  it('every `grants create` example names the actions and resources it grants', async () => {
    expect(cliGrants.length).toBeGreaterThanOrEqual(2);
    for (const args of cliGrants) {
      const g = await runGrantExample(args);
      expect(g.allowed_actions, args.join(' ')).not.toBeNull();
      expect(g.resources, args.join(' ')).not.toBeNull();
    }
  });

  it('"the same over HTTP" grants exactly what the CLI example above it grants', async () => {
    const example = new RegExp(`${GRANTS_CREATE.source}\\n# the same over HTTP[^\\n]*\\ncurl [\\s\\S]*?-d '(\\{[^']*\\})'`).exec(readme);
    expect(example, 'the README shows a CLI grant example, then the same over HTTP').not.toBeNull();
    const viaCli = await runGrantExample(words(example![1]!));
    const token = (await broker.deps.tokens.mint('operator', 'olga', 3600)).token;
    const res = await fetch(`${broker.url}/v1/grants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'idempotency-key': 'grant-fix-42', 'content-type': 'application/json' },
      body: example![2],
    });
    const viaHttp = (await res.json()) as Record<string, any>;
    expect(res.status, JSON.stringify(viaHttp)).toBe(201);
    for (const term of ['group', 'provider', 'level', 'allowed_actions', 'denied_actions', 'resources', 'ttl_s', 'reason', 'status']) {
      expect(viaHttp[term], term).toEqual(viaCli[term]);
    }
    // The digest covers every term an approver signs: the same terms, the same digest.
    expect(viaHttp['digest']).toBe(viaCli['digest']);
  });
});

describe('README shell signing example', () => {
  const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  let broker: TestBroker;
  beforeAll(async () => {
    broker = await startBroker();
  });
  afterAll(() => broker.stop());

  it('needs nothing but Node and the build, and prints what the README shows', async () => {
    const snippet = /\nnode --input-type=module -e "\n([\s\S]*?)"\n/.exec(readme)?.[1];
    expect(snippet, 'the README shows the node signing example').toBeDefined();
    const dir = tempDir('readme-signing-');
    const secret = exportSecretFile(path.join(dir, 'developer'), broker.deps.keys.current('developer'));
    const code = snippet!.replace("'http://127.0.0.1:8787'", JSON.stringify(broker.url)).replace("'./agents/developer/.ipc_secret'", JSON.stringify(secret));
    expect(code).not.toBe(snippet);
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', code], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.once('error', reject);
      child.once('close', (c) => resolve({ code: c, stdout, stderr }));
    });
    expect(run.code, run.stderr).toBe(0);
    // Both requests passed step 1 (the signature): whoami answers, and the call is decided (no grant yet).
    const shown = /console\.log\(call\.status[^\n]*\n# (200 [^\n]+)\n# (403 no_capability)/.exec(readme);
    expect(shown, 'the README shows the two answers').not.toBeNull();
    expect(run.stdout.trim().split('\n')).toEqual([shown![1], shown![2]]);
  });
});
