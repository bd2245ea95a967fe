import type { Access } from '../../auth/middleware.js';

/** Who may create, amend, revoke grants and carry approvals: operators and the `main` group (issue 4, "Who grants"). */
export const GRANTORS: Access = { roles: ['operator'], groups: ['main'] };

/** Who may read grants: operators, auditors, and `main` (which creates them). */
export const GRANT_READERS: Access = { roles: ['operator', 'auditor'], groups: ['main'] };
