import type { Provider } from './contract.js';
import { cloudLogsProvider } from './cloudlogs/index.js';
import { githubProviderFromEnv } from './github/index.js';

/**
 * The providers the host runs, built from the host's environment (credentials never come from
 * agents). Each provider reports itself unavailable when its credentials are missing.
 */
export function hostProviders(env: Record<string, string | undefined> = process.env): Provider[] {
  return [githubProviderFromEnv(env), cloudLogsProvider(env)];
}
