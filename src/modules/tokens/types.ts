/**
 * Who a bearer token speaks for: its role and its subject. Shared by the token service (mint,
 * verify), the revocations (by subject and role) and the routes and CLI that take them as input.
 */
import { z } from 'zod';

/** Token roles: operators manage grants; auditors read grants, calls and the audit trail. */
export const ROLES = ['operator', 'auditor'] as const;
/** A bearer token's role. */
export type Role = (typeof ROLES)[number];

/** Token subjects (who holds it): 1–128 of `[A-Za-z0-9._@-]`. */
export const Subject = z.string().regex(/^[A-Za-z0-9._@-]{1,128}$/, 'subjects are 1–128 of [A-Za-z0-9._@-]');
