// The writer thread's entry point (see commit.ts): loads the TypeScript sources through tsx, as
// bin/broker.js does, whatever started the process (tsx, the broker CLI, vitest).
import { register } from 'tsx/esm/api';

register();
await import(new URL('./commit-thread.ts', import.meta.url).href);
