/** Helpers for the limits tests. */

/** The receipt's steps as `step:result`. */
export const stepsOf = (body: { receipt: { steps: { step: string; result: string }[] } }): string[] => body.receipt.steps.map((s) => `${s.step}:${s.result}`);
