/**
 * The floors the providers and the protocol stand on, read from the source: a provider imports the
 * provider contract and platform pieces, never a module of the broker nor the app; the protocol
 * (RFC 9421, RFC 9530, the signing profile) imports nothing of the platform, the modules or the app;
 * and the client and the verifier both take the signing profile from the protocol.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/harness.js';

const SRC = path.join(REPO_ROOT, 'src');

/** Every `.ts` file under `dir`, recursively. */
function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** The files under `src/` that `file` imports (relative imports, resolved), as paths relative to `src/`. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+'(\.[^']+)'/gm)].map((m) => m[1]!);
  return specifiers.map((s) => path.relative(SRC, path.resolve(path.dirname(file), s)));
}

/** `file: import` for every import of a file under `dir` that starts with one of `forbidden`. */
function violations(dir: string, forbidden: string[]): string[] {
  return sources(path.join(SRC, dir)).flatMap((file) =>
    importsOf(file)
      .filter((target) => forbidden.some((f) => target.startsWith(f)))
      .map((target) => `${path.relative(SRC, file)}: ${target}`),
  );
}

describe('floors', () => {
  it('providers import the contract and platform pieces, never a module or the app', () => {
    expect(violations('providers', ['modules/', 'app/'])).toEqual([]);
  });

  it('every provider action is defined against the contract', () => {
    const users = sources(path.join(SRC, 'providers')).filter((f) => /\bdefineAction\(/.test(fs.readFileSync(f, 'utf8')) && !f.endsWith('contract.ts'));
    expect(users.length).toBeGreaterThan(0);
    for (const file of users) expect(importsOf(file)).toContain('providers/contract.js');
  });

  it('the protocol imports nothing of the platform, the modules or the app', () => {
    expect(violations('protocol', ['platform/', 'modules/', 'app/', 'providers/', 'client/'])).toEqual([]);
  });

  it('the client and the verifier take the signing profile from the protocol', () => {
    expect(importsOf(path.join(SRC, 'client/index.ts'))).toContain('protocol/profile.js');
    expect(importsOf(path.join(SRC, 'platform/http/verify.ts'))).toContain('protocol/profile.js');
    expect(importsOf(path.join(SRC, 'client/index.ts')).filter((t) => t.startsWith('platform/') || t.startsWith('modules/'))).toEqual([]);
  });
});
