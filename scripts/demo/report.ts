/**
 * How the demo prints what happened: for each step a heading, then one line per request or CLI
 * verb with its HTTP status (or exit code) and verdict. With `--json`, one JSON object per line
 * instead (`{"event": "start" | "step" | "check" | "end", …}`), for scripts and the demo's test.
 */

/** One request or CLI verb of a step, and how it answered. */
export interface Check {
  /** The story's step, 1–6 (0: setting up). */
  step: number;
  /** What was asked, in words. */
  what: string;
  /** How: `POST /v1/grants as operator`, `broker audit verify`, …. */
  via: string;
  /** The HTTP status, or the CLI's exit code when `via` is a CLI verb; null for a check of neither. */
  status: number | null;
  /** The status the story expects. */
  expected: number | null;
  /**
   * What the answer decided: a call's receipt `decision` (`allowed`, `denied`, `rejected`), a
   * grant's `status`, an approval's `outcome`, a task's `state`, `ok` for a CLI verb that passed.
   */
  verdict: string | null;
  /** The problem+json `code` of a refusal, else null. */
  code: string | null;
  /** One line a reader can act on: a result, a refusal's detail, the CLI's answer. */
  note: string;
  /** The status, verdict and code are the ones the story expects. */
  ok: boolean;
}

/** Raised by a check that did not answer as expected: the demo stops there and fails. */
export class DemoFailure extends Error {}

/** Prints the story, human-readable or as JSON lines, and remembers every check. */
export class Reporter {
  readonly checks: Check[] = [];

  constructor(
    private readonly json: boolean,
    private readonly out: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
  ) {}

  /** Where everything runs (first line). */
  start(info: { broker: string; github: string; temp_dir: string; broker_pid: number }): void {
    if (this.json) return this.out(JSON.stringify({ event: 'start', ...info }));
    this.out(`nanoclaw-broker demo`);
    this.out(`  broker          ${info.broker} (pid ${info.broker_pid}), data in ${info.temp_dir}`);
    this.out(`  recorded GitHub ${info.github} (127.0.0.1 only; replays test/fixtures/github)`);
  }

  /** A step's heading. */
  step(step: number, title: string): void {
    if (this.json) return this.out(JSON.stringify({ event: 'step', step, title }));
    this.out('');
    this.out(step === 0 ? title : `${step}. ${title}`);
  }

  /**
   * Records and prints a check.
   * @throws DemoFailure when it is not ok.
   */
  check(c: Omit<Check, 'ok'> & { ok?: boolean }): Check {
    const ok = (c.ok ?? true) && c.status === c.expected;
    const full: Check = { ...c, ok };
    this.checks.push(full);
    if (this.json) {
      this.out(JSON.stringify({ event: 'check', ...full }));
    } else {
      const mark = ok ? 'ok  ' : 'FAIL';
      const status = c.via.startsWith('broker ') ? `exit ${c.status ?? '?'}` : String(c.status ?? '');
      const verdict = [c.verdict, c.code].filter(Boolean).join(' ');
      this.out(`   ${mark} ${status.padEnd(6)} ${c.what}`);
      this.out(`               ${c.via}${verdict ? ` -> ${verdict}` : ''}`);
      if (c.note) this.out(`               ${c.note}`);
      if (!ok) this.out(`               expected ${c.expected}${c.ok === false ? ' and the verdict the story expects' : ''}`);
    }
    if (!ok) throw new DemoFailure(`step ${c.step}: ${c.what}: got ${c.status}${c.code ? ` ${c.code}` : ''}, expected ${c.expected}`);
    return full;
  }

  /** The last line: whether every step answered as expected, and that everything was cleaned up. */
  end(result: { ok: boolean; error: string | null; cleaned: boolean }): void {
    const steps = new Set(this.checks.filter((c) => c.ok).map((c) => c.step));
    if (this.json) return this.out(JSON.stringify({ event: 'end', ...result, checks: this.checks.length, steps: [...steps].filter((s) => s > 0) }));
    this.out('');
    if (result.ok) this.out(`demo passed: all 6 steps answered as expected (${this.checks.length} requests and CLI verbs).`);
    else this.out(`demo FAILED: ${result.error}`);
    this.out(result.cleaned ? 'cleaned up: broker stopped, recorded GitHub closed, temporary directory removed.' : 'cleanup incomplete (see above).');
  }
}
