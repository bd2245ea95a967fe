/** A source of time, injected everywhere so tests can pin and move it. */
export interface Clock {
  /** Current time in Unix milliseconds. */
  now(): number;
}

/** The wall clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** A clock for tests: starts at `startMs` and moves only when told. */
export class ManualClock implements Clock {
  constructor(private ms: number = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.ms;
  }
  /** Moves the clock forward by `ms` milliseconds. */
  advance(ms: number): void {
    this.ms += ms;
  }
  /** Sets the clock to `ms` (Unix ms). */
  set(ms: number): void {
    this.ms = ms;
  }
}
