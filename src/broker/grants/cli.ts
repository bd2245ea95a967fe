/**
 * CLI verbs of the grants capability (issue 4): `broker grants list|show|create|revoke`,
 * `broker approvers add|keygen|list`, `broker approve <grant-id> --key FILE [--deny]`.
 * They work on the data directory's database directly (the running server sees every change on
 * its next lookup) and print JSON on stdout.
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import type { JWK } from 'jose';
import { cliOperator, parseDurationS } from '../../auth/cli.js';
import { CliExit, printJson, withDeps } from '../../cli/common.js';
import { ApiError } from '../../http/problem.js';
import { validate } from '../../http/validate.js';
import { addApprover, generateApproverKey, listApprovers, signApproval } from './approvers.js';
import { createGrant, getGrant, listGrants, revokeAllGrants, revokeGrant, submitApproval } from './service.js';
import { CreateGrantBody } from './terms.js';
import type { GrantStatus } from './types.js';

/** Runs a CLI action, turning an ApiError into a one-line message and exit code 1. */
async function cli<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApiError) throw new CliExit(`${err.code}: ${err.detail}`);
    throw err;
  }
}

const csv = (v: string | undefined): string[] | undefined => (v === undefined ? undefined : v.split(',').map((s) => s.trim()).filter(Boolean));

/** Registers `grants`, `approvers` and `approve` on the program. */
export function registerGrantsCommands(program: Command): void {
  const grants = program.command('grants').description('capability grants');

  grants
    .command('list')
    .description('grants oldest first: {data, has_more, next_cursor}')
    .option('--group <group>')
    .option('--provider <provider>')
    .option('--status <status>', 'pending_approval | active | rejected | expired | revoked')
    .option('--at <rfc3339>', 'only grants active at that instant')
    .option('--limit <n>', 'page size, 1–500', '100')
    .option('--starting-after <id>', "the previous page's next_cursor")
    .action((o: { group?: string; provider?: string; status?: GrantStatus; at?: string; limit: string; startingAfter?: string }) =>
      withDeps((deps) =>
        cli(() => {
          const at = o.at === undefined ? undefined : Date.parse(o.at);
          if (at !== undefined && Number.isNaN(at)) throw new CliExit('--at: not an RFC 3339 instant');
          const { items, nextCursor } = listGrants(deps, { group: o.group, provider: o.provider, status: o.status, at, limit: Number(o.limit), after: o.startingAfter });
          printJson({ data: items, has_more: nextCursor !== null, next_cursor: nextCursor });
        }),
      ),
    );

  grants
    .command('show <id>')
    .description('one grant with its approvals and timeline')
    .action((id: string) => withDeps((deps) => cli(() => printJson(getGrant(deps, id)))));

  grants
    .command('create')
    .description('grant a group access to a provider (L3 waits for two approvals)')
    .requiredOption('--group <group>')
    .requiredOption('--provider <provider>')
    .requiredOption('--level <level>', '1 | 2 | 3 (or L1 | L2 | L3)')
    .requiredOption('--reason <text>')
    .option('--allow <patterns>', 'comma-separated action patterns (default: every action up to the level)')
    .option('--deny <patterns>', 'comma-separated action patterns, checked first')
    .option('--resources <patterns>', 'comma-separated resource patterns (default: any)')
    .option('--ttl <duration>', 'lifetime after activation, e.g. 8h (L2/L3: at most 7d, the default)')
    .option('--expires-at <rfc3339>', 'absolute expiry instead of --ttl')
    .action((o: { group: string; provider: string; level: string; reason: string; allow?: string; deny?: string; resources?: string; ttl?: string; expiresAt?: string }) =>
      withDeps((deps) =>
        cli(() => {
          const level = /^\d$/.test(o.level) ? Number(o.level) : o.level;
          const input = validate(
            CreateGrantBody,
            {
              group: o.group,
              provider: o.provider,
              level,
              reason: o.reason,
              allowed_actions: csv(o.allow) ?? null,
              denied_actions: csv(o.deny) ?? null,
              resources: csv(o.resources) ?? null,
              ...(o.ttl !== undefined ? { ttl_s: parseDurationS(o.ttl, '--ttl') } : {}),
              ...(o.expiresAt !== undefined ? { expires_at: o.expiresAt } : {}),
            },
            'options',
          );
          printJson(createGrant(deps, input, cliOperator()).grant);
        }),
      ),
    );

  grants
    .command('revoke [id]')
    .description('revoke one grant, or with --group X --all every active and pending grant of X (break-glass)')
    .option('--group <group>', 'with --all: the group whose grants to revoke')
    .option('--provider <provider>', 'with --all: only this provider')
    .option('--all', 'revoke all of --group')
    .option('--reason <text>')
    .action((id: string | undefined, o: { group?: string; provider?: string; all?: boolean; reason?: string }) =>
      withDeps((deps) =>
        cli(() => {
          if (o.all) {
            if (id !== undefined || o.group === undefined) throw new CliExit('use either `grants revoke <id>` or `grants revoke --group X --all`');
            const ids = revokeAllGrants(deps, o.group, cliOperator(), o.reason ?? 'break-glass', o.provider);
            printJson({ group: o.group, provider: o.provider ?? null, revoked: ids });
            return;
          }
          if (id === undefined) throw new CliExit('name the grant to revoke, or use --group X --all');
          printJson(revokeGrant(deps, id, cliOperator(), o.reason ?? null).grant);
        }),
      ),
    );

  const approvers = program.command('approvers').description('who may approve L3 grants (Ed25519 keys)');
  approvers
    .command('list')
    .description('registered approvers: policies/approvers.json, then those added here')
    .action(() =>
      withDeps(async (deps) =>
        printJson((await listApprovers(deps)).map((a) => ({ id: a.id, group: a.group, thumbprint: a.thumbprint, source: a.source, public_jwk: a.publicJwk }))),
      ),
    );
  approvers
    .command('add')
    .description('register an approver with its Ed25519 public JWK')
    .requiredOption('--id <id>', 'approver id (the JWS kid)')
    .requiredOption('--group <group>', "the approver's group (two approvals must come from two groups)")
    .requiredOption('--jwk <file>', 'the public JWK file (as printed by `approvers keygen`)')
    .action((o: { id: string; group: string; jwk: string }) =>
      withDeps((deps) =>
        cli(async () => {
          const publicJwk = readJson(o.jwk) as Record<string, unknown>;
          const a = await addApprover(deps, { id: o.id, group: o.group, publicJwk }, cliOperator());
          printJson({ id: a.id, group: a.group, thumbprint: a.thumbprint, source: a.source });
        }),
      ),
    );
  approvers
    .command('keygen')
    .description('make an Ed25519 key pair: the private JWK goes to --out (mode 0600), the public JWK to stdout')
    .requiredOption('--id <id>', 'approver id, stored as the key kid')
    .requiredOption('--out <file>', 'where to write the private JWK')
    .action(async (o: { id: string; out: string }) => {
      const { privateJwk, publicJwk } = await generateApproverKey(o.id);
      try {
        fs.writeFileSync(o.out, `${JSON.stringify(privateJwk)}\n`, { mode: 0o600, flag: 'wx' });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new CliExit(`${o.out} exists; not overwriting a key`);
        throw err;
      }
      printJson(publicJwk);
    });

  program
    .command('approve <grant-id>')
    .description("sign the grant's current terms with your approver key and submit the decision")
    .requiredOption('--key <file>', 'your private JWK (from `approvers keygen`)')
    .option('--deny', 'sign a denial (one denial rejects the grant)')
    .option('--ttl <duration>', 'how long the signature stays valid', '15m')
    .action((grantId: string, o: { key: string; deny?: boolean; ttl: string }) =>
      withDeps((deps) =>
        cli(async () => {
          const privateJwk = readJson(o.key) as JWK;
          if (typeof privateJwk.kid !== 'string' || typeof privateJwk.d !== 'string') throw new CliExit(`${o.key}: not an approver private key (needs kid and d)`);
          const grant = getGrant(deps, grantId);
          process.stderr.write(`signing ${o.deny ? 'a DENIAL' : 'an approval'} of ${grant.id}: L${grant.level} ${grant.provider} for ${grant.group}, digest ${grant.digest}\n`);
          const iat = Math.floor(deps.clock.now() / 1000);
          const decision = o.deny ? 'deny' : 'approve';
          const jws = await signApproval(privateJwk, { grant_id: grant.id, grant_digest: grant.digest, decision, iat, exp: iat + parseDurationS(o.ttl, '--ttl') });
          const { outcome, grant: after } = await submitApproval(deps, grant.id, jws, `approver:${privateJwk.kid}`);
          printJson({ outcome, grant: { id: after.id, status: after.status, approvals: after.approvals } });
        }),
      ),
    );
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CliExit(`${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
