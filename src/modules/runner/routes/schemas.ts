import { z } from 'zod';

/** Run statuses (see `RunStatus`). */
export const RUN_STATUSES = ['claimed', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled', 'interrupted'] as const;

/** A run id (a ULID). */
export const RunId = z.string().regex(/^[0-9A-HJKMNP-TV-Z]{26}$/);

/** `{id}` of `/v1/runs/{id}…`. */
export const RunIdParams = z.object({ id: z.string().describe('A run id (ULID).') });

/** A run: one process started for one dispatch. */
export const RunSchema = z
  .strictObject({
    id: z.string(),
    dispatch_id: z.string(),
    dispatch_key: z.string(),
    task_id: z.string(),
    group: z.string(),
    status: z.enum(RUN_STATUSES),
    pid: z.number().int().nullable(),
    exit_code: z.number().int().nullable(),
    signal: z.string().nullable(),
    output_tail: z.string().nullable().describe('The last lines of output, redacted.'),
    context_file: z.string().nullable(),
    created_at: z.iso.datetime(),
    started_at: z.iso.datetime().nullable(),
    finished_at: z.iso.datetime().nullable(),
    duration_ms: z.number().int().nullable(),
  })
  .meta({ id: 'Run' });
