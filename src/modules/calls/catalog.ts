/**
 * The action catalog: the providers registered in this broker and their actions by id. The
 * decision path looks an action up here (step 2); `GET /v1/ext/capabilities` lists them. What an
 * action and a provider are is the provider contract (`src/providers/contract.ts`).
 */
import type { ActionDefinition, Provider } from '../../providers/contract.js';

/** The registered actions by id. */
export class Catalog {
  private readonly actions = new Map<string, { action: ActionDefinition<any, unknown>; provider: Provider }>();
  readonly providers: Provider[] = [];

  /**
   * @throws Error when an action id is registered twice or does not start with `<provider>.`.
   */
  constructor(providers: Provider[] = []) {
    for (const p of providers) this.register(p);
  }

  /** Adds a provider and its actions (tests register their own). */
  register(provider: Provider): void {
    for (const action of provider.actions) {
      if (!action.id.startsWith(`${provider.name}.`)) throw new Error(`action ${action.id} must start with "${provider.name}."`);
      if (this.actions.has(action.id)) throw new Error(`action ${action.id} is registered twice`);
      this.actions.set(action.id, { action, provider });
    }
    this.providers.push(provider);
  }

  /** The action and its provider, or undefined for an unknown id. */
  get(id: string): { action: ActionDefinition<any, unknown>; provider: Provider } | undefined {
    return this.actions.get(id);
  }

  /** Every action, in registration order. */
  list(): ActionDefinition<any, unknown>[] {
    return [...this.actions.values()].map((e) => e.action);
  }
}
