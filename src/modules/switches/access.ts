/** Who may do what with kill switches: operators set and clear them; operators and auditors read them. */
import type { Role } from '../../platform/http/guard.js';

/** Who sets and clears switches. */
export const SWITCH_CHANGERS: readonly Role[] = ['operator'];
/** Who lists switches. */
export const SWITCH_READERS: readonly Role[] = ['operator', 'auditor'];
