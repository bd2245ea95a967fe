/**
 * CLI verbs of the grants capability: `broker grants list|show|create|revoke`,
 * `broker approvers add|keygen|list`, and `broker approve` in three forms:
 * `approve <grant-id> --key FILE [--deny] [--ttl D]` (sign and submit, on the broker host),
 * `approve --grant-file FILE --key FILE [--deny] [--ttl D] [--out FILE]` (sign offline on the
 * approver's machine: no database, no data directory) and `approve <grant-id> --jws FILE` (submit a
 * decision signed elsewhere). Except for offline signing they work on the data directory's
 * database directly (the running server sees every change on its next lookup); they print JSON on
 * stdout (offline signing prints the JWS).
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import writeFileAtomic from 'write-file-atomic';
import type { JWK } from 'jose';
import { CliExit, cliOperator, parseDurationS, printJson, type CliRunner } from '../../platform/cli.js';
import { ApiError } from '../../platform/http/problem.js';
import { validate } from '../../platform/http/validate.js';
import { systemClock } from '../../platform/clock.js';
import { addApprover, generateApproverKey, listApprovers } from './approvers.js';
import { describeDecision, GrantFileError, reviewGrantFile, signGrantDecision, type ReviewedGrant } from './review.js';
import { submitApproval } from './approvals.js';
import { createGrant, getGrant, listGrants, revokeAllGrants, revokeGrant, type GrantDeps } from './service.js';
import { CreateGrantBody } from './terms.js';
import { renewGrant, RenewGrantBody } from './renewal.js';
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

/** Registers `grants`, `approvers` and `approve` on the program; `withDeps` opens the broker's database for each. */
export function registerGrantsCommands(program: Command, withDeps: CliRunner<GrantDeps>): void {
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
        cli(async () => {
          const at = o.at === undefined ? undefined : Date.parse(o.at);
          if (at !== undefined && Number.isNaN(at)) throw new CliExit('--at: not an RFC 3339 instant');
          const { items, nextCursor } = await listGrants(deps, { group: o.group, provider: o.provider, status: o.status, at, limit: Number(o.limit), after: o.startingAfter });
          printJson({ data: items, has_more: nextCursor !== null, next_cursor: nextCursor });
        }),
      ),
    );

  grants
    .command('show <id>')
    .description('one grant with its approvals and timeline')
    .action((id: string) => withDeps((deps) => cli(async () => printJson(await getGrant(deps, id)))));

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
        cli(async () => {
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
          printJson((await createGrant(deps, input, cliOperator())).grant);
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
        cli(async () => {
          if (o.all) {
            if (id !== undefined || o.group === undefined) throw new CliExit('use either `grants revoke <id>` or `grants revoke --group X --all`');
            const ids = await revokeAllGrants(deps, o.group, cliOperator(), o.reason ?? 'break-glass', o.provider);
            printJson({ group: o.group, provider: o.provider ?? null, revoked: ids });
            return;
          }
          if (id === undefined) throw new CliExit('name the grant to revoke, or use --group X --all');
          printJson((await revokeGrant(deps, id, cliOperator(), o.reason ?? null)).grant);
        }),
      ),
    );

  grants
    .command('renew <id>')
    .description('extend an active grant\'s expiry (at most 7 days from now); an L3 renewal waits for two approvals (`broker approve <id>`)')
    .option('--ttl <duration>', 'the new expiry as a duration from now, e.g. 3d')
    .option('--expires-at <rfc3339>', 'the new expiry as an instant')
    .requiredOption('--reason <text>')
    .action((id: string, o: { ttl?: string; expiresAt?: string; reason: string }) =>
      withDeps((deps) =>
        cli(async () => {
          const input = validate(
            RenewGrantBody,
            { reason: o.reason, ...(o.ttl !== undefined ? { ttl_s: parseDurationS(o.ttl, '--ttl') } : {}), ...(o.expiresAt !== undefined ? { expires_at: o.expiresAt } : {}) },
            'options',
          );
          const { replayed: _replayed, ...result } = await renewGrant(deps, id, input, cliOperator());
          printJson(result);
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
    .command('approve [grant-id]')
    .description(
      'sign a decision on an L3 grant: on the broker host, sign and submit (<grant-id> --key); on your own machine, ' +
        'sign offline from the grant JSON (--grant-file --key, prints the JWS, no database); or, on the broker host, ' +
        'submit a JWS signed elsewhere (<grant-id> --jws)',
    )
    .option('--key <file>', 'your private JWK (from `approvers keygen`)')
    .option('--grant-file <file>', 'sign offline: the grant as GET /v1/grants/{id} answers it ("-" reads stdin)')
    .option('--out <file>', 'with --grant-file: write the JWS to this file (mode 0600) instead of stdout')
    .option('--jws <file>', 'submit a decision signed elsewhere: a file holding the compact JWS ("-" reads stdin)')
    .option('--deny', 'sign a denial (one denial rejects the grant)')
    .option('--ttl <duration>', 'how long the signature stays valid (default 15m)')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  broker approve grt_01K… --key ~/.broker/sam.jwk                           # on the broker host: sign and submit',
        '  broker approve --grant-file grant.json --key ~/.broker/sam.jwk > sam.jws   # anywhere: sign offline',
        '  broker approve grt_01K… --jws sam.jws                                      # on the broker host: submit it',
      ].join('\n'),
    )
    .action(async (grantId: string | undefined, o: ApproveOptions) => {
      const mode = approveMode(grantId, o);
      if (mode === 'offline') return signOffline(o.grantFile!, o);
      if (mode === 'submit') {
        const jws = readJws(o.jws!);
        return withDeps((deps) =>
          cli(async () => {
            const { outcome, grant } = await submitApproval(deps, grantId!, jws, cliOperator());
            printJson({ outcome, grant: { id: grant.id, status: grant.status, approvals: grant.approvals } });
          }),
        );
      }
      const privateJwk = readApproverKey(o.key!);
      const ttlS = parseDurationS(o.ttl ?? DEFAULT_APPROVAL_TTL, '--ttl');
      return withDeps((deps) =>
        cli(async () => {
          const found = await getGrant(deps, grantId!);
          // An active grant with a renewal waiting: the signature is over the terms with the new expiry.
          const grant = found.renewal ? { ...found, ttl_s: null, expires_at: found.renewal.expires_at, digest: found.renewal.digest } : found;
          const decision = o.deny ? 'deny' : 'approve';
          process.stderr.write(describeDecision(grant, decision));
          const jws = await signGrantDecision(privateJwk, grant, decision, deps.clock.now(), ttlS);
          const { outcome, grant: after } = await submitApproval(deps, grant.id, jws, `approver:${privateJwk.kid}`);
          printJson({ outcome, grant: { id: after.id, status: after.status, approvals: after.approvals } });
        }),
      );
    });
}

/** How long an approval signed by `broker approve` stays valid unless `--ttl` says otherwise. */
const DEFAULT_APPROVAL_TTL = '15m';

interface ApproveOptions {
  key?: string;
  grantFile?: string;
  out?: string;
  jws?: string;
  deny?: boolean;
  ttl?: string;
}

/**
 * Which of the three forms of `broker approve` the arguments ask for: `host` (<grant-id> --key:
 * sign from the database and submit), `offline` (--grant-file --key: sign, print the JWS; no
 * database) or `submit` (<grant-id> --jws: submit a JWS signed elsewhere).
 * @throws CliExit naming the conflicting or missing arguments.
 */
function approveMode(grantId: string | undefined, o: ApproveOptions): 'host' | 'offline' | 'submit' {
  if (o.jws !== undefined && o.key !== undefined) {
    throw new CliExit('--jws and --key are mutually exclusive: --jws submits a decision already signed, --key signs one');
  }
  if (o.grantFile !== undefined) {
    if (o.jws !== undefined) throw new CliExit('--grant-file signs offline and --jws submits on the broker host; use one of them');
    if (grantId !== undefined) throw new CliExit('--grant-file takes no <grant-id>: the grant id is in the file');
    if (o.key === undefined) throw new CliExit('--grant-file needs --key FILE (your private JWK) to sign with');
    return 'offline';
  }
  if (o.out !== undefined) throw new CliExit('--out goes with --grant-file (offline signing); `approve <grant-id>` submits the decision instead');
  if (grantId === undefined) {
    throw new CliExit('name the grant (`approve <grant-id> --key FILE` or `--jws FILE` on the broker host), or sign offline with `approve --grant-file FILE --key FILE`');
  }
  if (o.jws !== undefined) {
    if (o.deny || o.ttl !== undefined) throw new CliExit('--deny and --ttl are signed into the JWS; they do not go with --jws');
    return 'submit';
  }
  if (o.key === undefined) throw new CliExit('give --key FILE (sign and submit) or --jws FILE (submit a decision signed elsewhere)');
  return 'host';
}

/**
 * `broker approve --grant-file FILE --key FILE [--deny] [--ttl D] [--out FILE]`: checks the grant
 * file ({@link reviewGrantFile}: shape, pending, the digest recomputed from its terms), prints the
 * terms on stderr and the compact JWS on stdout or in `--out` (mode 0600). Uses the system clock;
 * never opens the database nor reads or creates the data directory.
 * @throws CliExit for an unreadable key or grant file, a file that cannot be signed, a bad `--ttl`.
 */
async function signOffline(grantFile: string, o: ApproveOptions): Promise<void> {
  const privateJwk = readApproverKey(o.key!);
  const ttlS = parseDurationS(o.ttl ?? DEFAULT_APPROVAL_TTL, '--ttl');
  const now = systemClock.now();
  let grant: ReviewedGrant;
  try {
    grant = reviewGrantFile(readJson(grantFile), now);
  } catch (err) {
    if (err instanceof GrantFileError) throw new CliExit(`${fileName(grantFile)}: ${err.message}`);
    throw err;
  }
  const decision = o.deny ? 'deny' : 'approve';
  process.stderr.write(describeDecision(grant, decision));
  const jws = await signGrantDecision(privateJwk, grant, decision, now, ttlS);
  const exp = new Date((Math.floor(now / 1000) + ttlS) * 1000).toISOString();
  if (o.out !== undefined) writePrivateFile(o.out, `${jws}\n`);
  process.stderr.write(
    `signed as ${privateJwk.kid}, valid until ${exp}${o.out !== undefined ? `, written to ${o.out}` : ''}; an operator submits it on the broker host with ` +
      `\`broker approve ${grant.id} --jws FILE\`, or POST /v1/grants/${grant.id}/approvals with Content-Type: application/jose\n`,
  );
  if (o.out === undefined) process.stdout.write(`${jws}\n`);
}

/** Reads an approver's private JWK (`approvers keygen`). @throws CliExit when unreadable or not a private key with a kid. */
function readApproverKey(file: string): JWK & { kid: string } {
  const jwk = readJson(file);
  if (typeof jwk !== 'object' || jwk === null || typeof (jwk as JWK).kid !== 'string' || typeof (jwk as JWK).d !== 'string') {
    throw new CliExit(`${fileName(file)}: not an approver private key (needs kid and d)`);
  }
  return jwk as JWK & { kid: string };
}

/** Reads a compact JWS from a file (or stdin for "-"), trimmed. @throws CliExit when unreadable or empty. */
function readJws(file: string): string {
  const text = readText(file).trim();
  if (text === '') throw new CliExit(`${fileName(file)}: empty; expected the compact JWS of an approval`);
  return text;
}

/** Writes `text` to `file` atomically with mode 0600 (also when the file already existed). @throws CliExit when it cannot. */
function writePrivateFile(file: string, text: string): void {
  try {
    writeFileAtomic.sync(file, text, { mode: 0o600 });
  } catch (err) {
    throw new CliExit(`${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

const fileName = (file: string): string => (file === '-' ? 'stdin' : file);

function readText(file: string): string {
  try {
    return fs.readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new CliExit(`${fileName(file)}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function readJson(file: string): unknown {
  const text = readText(file);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CliExit(`${fileName(file)}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
