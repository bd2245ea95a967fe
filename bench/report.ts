/**
 * The targets of `npm run bench` (docs/performance.md): every ratio the run can compute, beside
 * its target, as one table. Targets are reported, never asserted (timings are not test material).
 */

/** One row of the targets table. */
export interface TargetRow {
  '#': string;
  measure: string;
  value: string;
  target: string;
  verdict: 'met' | 'missed' | 'report' | 'not run';
}

/** What the targets are computed from; any part may be missing (not run). */
export interface TargetInputs {
  eCpuUs?: number;
  fCpuUs?: number;
  bReqS?: number;
  gReqS?: number;
  h16?: { added_p50_ms: number; added_p99_ms: number };
  dSteps2to12P50Us?: number;
  iCedarP50Us?: number;
  bGrowthReqS?: number;
  growthRows?: number;
  dP50At100k?: number;
  dGrants?: number;
  dP50At10?: number;
  queries?: Record<string, { p99_ms: number }>;
  verifyRowsS?: number;
  servePeakRssBytes?: number | null;
}

const r3 = (x: number) => String(Math.round(x * 1000) / 1000);

/** The targets table. */
export function targetRows(t: TargetInputs): TargetRow[] {
  const rows: TargetRow[] = [];
  const add = (n: string, measure: string, value: number | undefined | null, target: string, pass: ((v: number) => boolean) | null, fmt: (v: number) => string = r3) => {
    const verdict = value === undefined || value === null || Number.isNaN(value) ? 'not run' : pass === null ? 'report' : pass(value) ? 'met' : 'missed';
    rows.push({ '#': n, measure, value: value === undefined || value === null ? '' : fmt(value), target, verdict });
  };
  const ratio = (a?: number, b?: number) => (a === undefined || b === undefined || b === 0 ? undefined : a / b);
  add('1', '(e) CPU per call ÷ (f) CPU per call', ratio(t.eCpuUs, t.fCpuUs), '≤ 1.5', (v) => v <= 1.5);
  add('2', '(b) req/s ÷ (g) req/s', ratio(t.bReqS, t.gReqS), '≥ 0.6', (v) => v >= 0.6);
  add('3', '(h) added p50 through the broker, 16 callers (ms)', t.h16?.added_p50_ms, '≤ 1 ms', (v) => v <= 1);
  add('3', '(h) added p99 through the broker, 16 callers (ms)', t.h16?.added_p99_ms, '≤ 3 ms', (v) => v <= 3);
  add('4', '(d) steps 2–12 p50 ÷ (i) Cedar p50', ratio(t.dSteps2to12P50Us, t.iCedarP50Us), 'report', null, (v) => v.toFixed(4));
  add('5', `(b) at ${t.growthRows ?? '?'} audit rows ÷ (b) empty`, ratio(t.bGrowthReqS, t.bReqS), '≥ 0.9', (v) => v >= 0.9);
  add('5', `(d) steps 2–12 p50 at ${t.dGrants ?? '?'} grants ÷ at 10`, ratio(t.dP50At100k, t.dP50At10), '≤ 1.2', (v) => v <= 1.2);
  for (const [name, q] of Object.entries(t.queries ?? { grants_as_of: undefined, grant_timeline: undefined, audit_page_by_kind: undefined })) {
    add('6', `auditor query ${name} p99 (ms) at ${t.growthRows ?? '?'} rows`, q?.p99_ms, '≤ 20 ms', (v) => v <= 20);
  }
  add('7', 'audit verify (rows/s)', t.verifyRowsS, '≥ 250 000', (v) => v >= 250_000, (v) => String(Math.round(v)));
  add('8', `peak RSS of broker serve at ${t.growthRows ?? '?'} rows (MB)`, t.servePeakRssBytes === null || t.servePeakRssBytes === undefined ? undefined : t.servePeakRssBytes / 2 ** 20, '≤ 250 MB', (v) => v <= 250, (v) => String(Math.round(v)));
  return rows;
}
