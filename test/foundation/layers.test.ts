/**
 * The floors of the source tree, read from the files' own import statements: the application
 * layer (`src/app/`) composes the modules and the platform, so neither imports it back (a module
 * declares the narrow deps it runs on; the app's deps satisfy them structurally).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/harness.js';

const SRC = path.join(REPO_ROOT, 'src');

/** Every `.ts` file under `dir`, as paths relative to `src/`. */
function sources(dir: string): string[] {
  return fs
    .readdirSync(path.join(SRC, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.relative(SRC, path.join(e.parentPath, e.name)));
}

/** The files under `src/` that `file` imports (static `import`/`export … from`), relative to `src/`. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(SRC, file), 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'(\.{1,2}\/[^']+)'/gms)].map((m) => path.relative(SRC, path.resolve(path.dirname(path.join(SRC, file)), m[1]!)));
}

describe('layers', () => {
  it('no module and no platform file imports the application layer', () => {
    const upward = [...sources('modules'), ...sources('platform')].flatMap((file) => importsOf(file).filter((to) => to.startsWith(`app${path.sep}`)).map((to) => `${file} -> ${to}`));
    expect(upward).toEqual([]);
  });

  it('reads imports (the check above sees something)', () => {
    expect(importsOf(path.join('app', 'deps.ts'))).toContain(path.join('modules', 'grants', 'store.js'));
  });
});
