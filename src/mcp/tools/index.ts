/**
 * The static tool families of the agents' MCP server, in listing order. Adding a family is one
 * file under `tools/` exporting a {@link ToolFamily} and one line here. The typed action tools
 * are not a family: they follow the capabilities (`actions.ts`, wired in `server.ts`).
 */
import type { ToolFamily } from '../registry.js';
import { accessTools } from './access.js';
import { dispatchTools } from './dispatches.js';
import { extTools } from './ext.js';
import { gateTools } from './gates.js';
import { identityTools } from './identity.js';
import { taskTools } from './tasks.js';

/** Every static family. */
export const TOOL_FAMILIES: readonly ToolFamily[] = [
  identityTools,
  extTools,
  accessTools,
  taskTools,
  dispatchTools,
  gateTools,
];
