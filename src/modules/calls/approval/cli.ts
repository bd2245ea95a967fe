/**
 * `broker approve-call`: an approver signs a per-call approval of one held call, offline like
 * `broker approve` signs a grant. Two forms, both printing the compact JWS (or writing it to
 * `--out`, mode 0600) for an operator to submit with
 * `POST /v1/calls/{group}/{request_id}/approvals` (the serving broker runs the call on the second
 * approval, so the CLI never submits: a CLI process must not execute calls):
 * - `approve-call --call-file FILE --key FILE` on the approver's own machine, from the call as
 *   `GET /v1/calls/{group}/{request_id}` answers it: no database, no data directory;
 * - `approve-call <group> <request-id> --key FILE` on the broker host, from the database.
 * Either way the request digest is recomputed from the request shown, and the request is printed
 * on stderr before signing.
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import type { JWK } from 'jose';
import writeFileAtomic from 'write-file-atomic';
import { z } from 'zod';
import { CliExit, parseDurationS, type CliRunner } from '../../../platform/cli.js';
import { systemClock } from '../../../platform/clock.js';
import { requestDigest, signCallApproval, type HeldRequest } from './request.js';
import type { CallHoldStore } from './store.js';

/** What the host form reads: the held calls' store. */
export interface ApproveCallDeps {
  stores: { holds: CallHoldStore };
}

/** The members of a call view an offline signature depends on (others are ignored). */
const CallFile = z.looseObject({
  request_id: z.string(),
  group: z.string(),
  status: z.string(),
  approval: z.looseObject({
    request: z.strictObject({
      method: z.literal('POST'),
      path: z.literal('/v1/ext/calls'),
      group: z.string(),
      request_id: z.string(),
      action: z.string(),
      params: z.unknown(),
      resources: z.array(z.string()),
      task_id: z.string().nullable(),
    }),
    request_digest: z.string(),
    expires_at: z.string(),
  }),
});

/**
 * Checks a call file before signing: its shape, `awaiting_approval`, the request naming the same
 * call, the digest recomputed from the request, the hold not expired at `nowMs`.
 * @returns the request and its digest.
 * @throws CliExit naming what is wrong.
 */
export function reviewCallFile(json: unknown, nowMs: number): { request: HeldRequest; digest: string; expiresAt: string } {
  const parsed = CallFile.safeParse(json);
  if (!parsed.success) {
    throw new CliExit(`not a held call as GET /v1/calls/{group}/{request_id} answers it: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`).join('; ')}`);
  }
  const c = parsed.data;
  if (c.status !== 'awaiting_approval') throw new CliExit(`call ${c.group}/${c.request_id} is ${c.status}, not awaiting_approval; there is nothing to approve`);
  const request = c.approval.request as HeldRequest;
  if (request.group !== c.group || request.request_id !== c.request_id) throw new CliExit('the held request names another call than the file (the file was edited)');
  const digest = requestDigest(request);
  if (digest !== c.approval.request_digest) throw new CliExit(`the file's request_digest ${c.approval.request_digest} is not the digest of its request (${digest}): the file was edited; fetch the call again`);
  if (Date.parse(c.approval.expires_at) <= nowMs) throw new CliExit(`call ${c.group}/${c.request_id} waited for approvals until ${c.approval.expires_at}; it has expired`);
  return { request, digest, expiresAt: c.approval.expires_at };
}

/** The request a signature covers, for stderr; strings JSON-quoted so nothing fakes a line. */
export function describeCall(r: HeldRequest, digest: string, expiresAt: string): string {
  return [
    `signing an APPROVAL of call ${JSON.stringify(r.group)}/${JSON.stringify(r.request_id)} (it runs once, when approved twice):`,
    `  action:     ${JSON.stringify(r.action)}`,
    `  params:     ${JSON.stringify(r.params)}`,
    `  resources:  ${r.resources.map((x) => JSON.stringify(x)).join(', ')}`,
    `  task:       ${r.task_id === null ? '-' : JSON.stringify(r.task_id)}`,
    `  expires at: ${expiresAt}`,
    `  digest:     ${digest}`,
    '',
  ].join('\n');
}

/** Registers `approve-call` on the program; `withDeps` opens the broker's database for the host form. */
export function registerApproveCallCommand(program: Command, withDeps: CliRunner<ApproveCallDeps>): void {
  program
    .command('approve-call [group] [request-id]')
    .description('sign a per-call approval of a held call: offline from the call JSON (--call-file), or on the broker host from the database; prints the JWS')
    .requiredOption('--key <file>', 'your private JWK (from `approvers keygen`)')
    .option('--call-file <file>', 'sign offline: the call as GET /v1/calls/{group}/{request_id} answers it ("-" reads stdin)')
    .option('--out <file>', 'write the JWS to this file (mode 0600) instead of stdout')
    .option('--ttl <duration>', 'how long the signature stays valid (default 15m)')
    .action(async (group: string | undefined, requestId: string | undefined, o: { key: string; callFile?: string; out?: string; ttl?: string }) => {
      const jwk = readJson(o.key) as JWK;
      if (typeof jwk.kid !== 'string' || typeof jwk.d !== 'string') throw new CliExit(`${o.key}: not an approver private key (needs kid and d)`);
      const ttlS = parseDurationS(o.ttl ?? '15m', '--ttl');
      let reviewed: { request: HeldRequest; digest: string; expiresAt: string };
      if (o.callFile !== undefined) {
        if (group !== undefined) throw new CliExit('--call-file takes no <group> <request-id>: the call is in the file');
        reviewed = reviewCallFile(readJson(o.callFile), systemClock.now());
      } else {
        if (group === undefined || requestId === undefined) throw new CliExit('name the call (`approve-call <group> <request-id> --key FILE` on the broker host), or sign offline with --call-file FILE');
        reviewed = await withDeps(async (deps) => {
          const held = await deps.stores.holds.get(group, requestId);
          if (!held) throw new CliExit(`no held call ${requestId} of group ${group}`);
          if (held.call.status !== 'awaiting_approval') throw new CliExit(`call ${group}/${requestId} is ${held.call.status}, not awaiting_approval`);
          return { request: JSON.parse(held.hold.request) as HeldRequest, digest: held.hold.requestDigest, expiresAt: new Date(held.hold.expiresAt).toISOString() };
        });
      }
      const { request, digest, expiresAt } = reviewed;
      process.stderr.write(describeCall(request, digest, expiresAt));
      const jws = await signCallApproval(jwk, { group: request.group, request_id: request.request_id, request_digest: digest }, systemClock.now(), ttlS);
      const path = `/v1/calls/${encodeURIComponent(request.group)}/${encodeURIComponent(request.request_id)}/approvals`;
      if (o.out !== undefined) writeFileAtomic.sync(o.out, `${jws}\n`, { mode: 0o600 });
      else process.stdout.write(`${jws}\n`);
      process.stderr.write(`signed as ${jwk.kid}; an operator submits it with POST ${path} (Content-Type: application/jose)\n`);
    });
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file === '-' ? 0 : file, 'utf8'));
  } catch (err) {
    throw new CliExit(`${file === '-' ? 'stdin' : file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
