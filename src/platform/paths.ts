/**
 * Where the broker's own files are, wherever its code runs from: the TypeScript sources under
 * tsx and vitest, or the compiled `dist/` that `npm start`, `bin/broker.js` and the Docker image
 * run. Paths computed relative to a module file differ between the two layouts, so every
 * non-code asset (migrations, vendored `.proto` files) is found from the package root instead.
 */
import path from 'node:path';
import { packageDirectorySync } from 'package-directory';

/**
 * Absolute path of the directory holding the broker's `package.json` (the repository root in a
 * checkout, `/app` in the Docker image).
 * @throws Error at import when no `package.json` is above this module (a broken install).
 */
export const PACKAGE_ROOT: string = (() => {
  const dir = packageDirectorySync({ cwd: import.meta.dirname });
  if (!dir) throw new Error(`no package.json above ${import.meta.dirname}; the broker's install is incomplete`);
  return dir;
})();

/**
 * Absolute path of a file or directory of the package, from its root.
 * @param parts path segments, e.g. `'drizzle'` or `'src', 'providers', 'cloudlogs', 'protos'`.
 */
export function packagePath(...parts: string[]): string {
  return path.join(PACKAGE_ROOT, ...parts);
}
