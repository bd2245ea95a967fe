/** The response shapes of the token routes, as OpenAPI components. */
import { z } from 'zod';
import { ROLES } from '../types.js';

/** A token revocation as the API answers it (`TokenRevocation` in revocations.ts). */
export const TokenRevocationSchema = z
  .strictObject({
    id: z.string().describe('`rvk_<ULID>`'),
    jti: z.string().nullable().describe('The one token revoked, or null for a subject revocation.'),
    subject: z.string().nullable(),
    role: z.enum(ROLES).nullable(),
    issued_before: z.iso.datetime().nullable().describe('Subject revocations: tokens issued at or before this second are refused.'),
    revoked_at: z.iso.datetime(),
    revoked_by: z.string(),
    reason: z.string(),
  })
  .meta({ id: 'TokenRevocation' });

/** A revocation's id: `rvk_` and a ULID. */
export const RevocationId = z.string().regex(/^rvk_[0-9A-HJKMNP-TV-Z]{26}$/, 'a revocation id is rvk_ and a ULID');
