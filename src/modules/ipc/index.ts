/**
 * The file transport (IPC) for agent containers without a network: request files in each group's
 * directory, answered through the app's own request handling. See `service.ts` and docs/ipc.md;
 * the file formats are `src/protocol/ipc.ts`.
 */
export { IpcService, MAX_ACTIVE_PER_GROUP, maxRequestFileBytes, startIpc, type IpcDeps } from './service.js';
export { AGENT_PATH_RE } from './admit.js';
export { IPC_SUBDIRS, type IpcSubdir } from './layout.js';
