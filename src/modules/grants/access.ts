import type { Access } from '../../platform/http/guard.js';

/**
 * Who may create, amend and revoke grants, and carry approvals: operators and the `main` group
 * (an agent group's signature never grants an operator route, except that
 * `main` may create and revoke grants; amending a pending grant is re-creating it, and carrying an
 * approver's JWS confers nothing, the signature is the authority).
 */
export const GRANTORS: Access = { roles: ['operator'], groups: ['main'] };

/** Who may read grants: operators and auditors (agent groups see their own access through `GET /v1/ext/capabilities`). */
export const GRANT_READERS: Access = { roles: ['operator', 'auditor'] };
