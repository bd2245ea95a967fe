/**
 * Summarises a V8 `.cpuprofile` (`node --cpu-prof`) by self time: the top functions (name, file
 * and line) and the top files, each as a share of the profile's samples and, given `--calls=N`, as
 * µs per call. Used for docs/performance.md's "Where (e)'s CPU goes".
 * Usage: `node dist/scripts/cpuprofile-top.js <file.cpuprofile> [--top=30] [--calls=N]`.
 */
import fs from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const file = process.argv[2];
if (!file) throw new Error('usage: cpuprofile-top <file.cpuprofile> [--top=30] [--calls=N]');
const opt = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const top = Number(opt('top') ?? 30);
const calls = opt('calls') ? Number(opt('calls')) : null;
const p = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;

// Self time per node: each sample's delta goes to the node sampled.
const byNode = new Map<number, ProfileNode>(p.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
p.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i + 1] ?? 0)));
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
const short = (url: string) => url.replace(/^file:\/\/.*?\/(node_modules|dist)\//, '$1/').replace(/^node:/, 'node:');
const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
const fns = new Map<string, number>();
const files = new Map<string, number>();
for (const [id, us] of selfUs) {
  const f = byNode.get(id)!.callFrame;
  const where = f.url ? `${short(f.url)}:${f.lineNumber + 1}` : '(native)';
  add(fns, `${f.functionName || '(anonymous)'} ${where}`, us);
  add(files, f.url ? short(f.url) : `(${f.functionName})`, us);
}
const line = (k: string, us: number) =>
  `${((us / total) * 100).toFixed(1).padStart(5)}%${calls ? `  ${(us / calls).toFixed(1).padStart(6)} µs/call` : ''}  ${k}`;
const print = (title: string, m: Map<string, number>) => {
  process.stdout.write(`${title}\n`);
  for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${line(k, us)}\n`);
};
process.stdout.write(`${file}: ${(total / 1000).toFixed(0)} ms sampled\n`);
print('self time by function', fns);
print('self time by file', files);
