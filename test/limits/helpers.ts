/** Helpers for the limits tests: a policies directory with the repository's policies and a given `limits.json`. */
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, tempDir } from '../helpers/harness.js';

/** A temp policies directory: the repository's `policies/*.json` plus `limits.json` holding `limits`. */
export function policiesWithLimits(limits: unknown): string {
  const dir = tempDir('broker-policies-');
  for (const f of fs.readdirSync(path.join(REPO_ROOT, 'policies'))) {
    if (f.endsWith('.json')) fs.copyFileSync(path.join(REPO_ROOT, 'policies', f), path.join(dir, f));
  }
  fs.writeFileSync(path.join(dir, 'limits.json'), JSON.stringify(limits, null, 2));
  return dir;
}

/** The receipt's steps as `step:result`. */
export const stepsOf = (body: { receipt: { steps: { step: string; result: string }[] } }): string[] => body.receipt.steps.map((s) => `${s.step}:${s.result}`);
