/** Who may do what with webhook deliveries: operators and auditors read them; operators retry one. */
import type { Role } from '../../platform/http/guard.js';

/** Who lists deliveries. */
export const DELIVERY_READERS: readonly Role[] = ['operator', 'auditor'];
/** Who retries a delivery. */
export const DELIVERY_RETRIERS: readonly Role[] = ['operator'];
