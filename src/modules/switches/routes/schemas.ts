import { z } from 'zod';
import { SWITCH_SCOPES } from '../service.js';

/** A switch id (`ksw_<ULID>`). */
export const SwitchId = z.string().regex(/^ksw_[0-9A-HJKMNP-TV-Z]{26}$/);

/** `{id}` of `/v1/switches/{id}…`. */
export const SwitchIdParams = z.object({ id: z.string().describe('A kill switch id (`ksw_<ULID>`).') });

/** A kill switch (`KillSwitch`). */
export const SwitchSchema = z
  .strictObject({
    id: z.string(),
    scope: z.enum(SWITCH_SCOPES),
    target: z.string().nullable().describe('The group, provider or action id; null for `all`.'),
    reason: z.string(),
    set_by: z.string(),
    since: z.iso.datetime(),
    active: z.boolean(),
    cleared_by: z.string().nullable(),
    cleared_at: z.iso.datetime().nullable(),
    clear_reason: z.string().nullable(),
  })
  .openapi('KillSwitch');

/** The body of `POST /v1/switches`. */
export const SetSwitchBody = z.strictObject({
  scope: z.enum(SWITCH_SCOPES),
  target: z.string().trim().min(1).max(200).optional().describe('Required for `group`, `provider` and `action`; absent for `all`.'),
  reason: z.string().trim().min(1).max(2000),
});

/** The body of `POST /v1/switches/{id}/clear`. */
export const ClearSwitchBody = z.strictObject({ reason: z.string().trim().min(1).max(2000) });
