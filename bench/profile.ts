/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, e.g. (e) run with `BENCH_CPU_PROF=<dir>`):
 * `node dist/bench/profile.js <file.cpuprofile> [top]` prints the top entries by self time (function,
 * file:line, ms and share of the sampled time) and, for the functions named as candidates for
 * removal in docs/performance.md, their inclusive time (self and callees, recursion counted once).
 */
import fs from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** The functions whose inclusive share docs/performance.md lists as candidates. */
const CANDIDATES = ['switchedOff', 'immediate', 'flush', 'appendActivities', 'storedActivityHash', 'canonicalDetail', 'redact', 'refuseSecrets', 'buildScanner', 'shapeCall', 'claimRecord', 'endRow', 'findNow', 'candidates', 'decide', 'evaluate', 'submit'];

const file = process.argv[2];
if (!file) {
  console.error('usage: node dist/bench/profile.js <file.cpuprofile> [top]');
  process.exit(2);
}
const top = Number(process.argv[3] ?? 30);
const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
const label = (n: ProfileNode) => {
  const where = n.callFrame.url ? `${path.basename(n.callFrame.url.replace(/^file:\/\//, ''))}:${n.callFrame.lineNumber + 1}` : '(native)';
  return `${n.callFrame.functionName || '(anonymous)'} ${where}`;
};
const self = new Map<string, number>();
for (const [id, us] of selfUs) {
  const key = label(byId.get(id)!);
  self.set(key, (self.get(key) ?? 0) + us);
}
const pct = (us: number) => `${((us / total) * 100).toFixed(1)} %`;
console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled`);
console.table(
  [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, us]) => ({ 'function file:line': fn, 'self ms': Math.round(us / 1000), share: pct(us) })),
);

// Inclusive time of the candidates: each node's subtree, not counting a node under an ancestor of the same name.
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const subtree = new Map<number, number>();
const sizeOf = (id: number): number => {
  const known = subtree.get(id);
  if (known !== undefined) return known;
  const n = byId.get(id)!;
  const sum = (selfUs.get(id) ?? 0) + (n.children ?? []).reduce((s, c) => s + sizeOf(c), 0);
  subtree.set(id, sum);
  return sum;
};
const inclusive = CANDIDATES.map((name) => {
  let us = 0;
  for (const n of profile.nodes) {
    if (n.callFrame.functionName !== name) continue;
    let up = parent.get(n.id);
    let nested = false;
    while (up !== undefined) {
      if (byId.get(up)!.callFrame.functionName === name) nested = true;
      up = parent.get(up);
    }
    if (!nested) us += sizeOf(n.id);
  }
  return { function: name, 'inclusive ms': Math.round(us / 1000), share: pct(us) };
}).filter((r) => r['inclusive ms'] > 0);
console.table(inclusive);
