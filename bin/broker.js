#!/usr/bin/env node
// The `broker` CLI entry point: runs the compiled build in dist/ (`npm run build`; `npm start`,
// `npm run broker` and the test suite build it first). From a checkout, `npx tsx src/main.ts`
// runs the sources directly.
import { existsSync } from 'node:fs';

const main = new URL('../dist/src/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('broker: dist/ is missing; run `npm run build` first (or `npm start` to build and serve).');
  process.exit(1);
}
await import(main.href);
