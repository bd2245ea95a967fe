import type { Command } from 'commander';
import { z } from 'zod';
import { CliExit, cliOperator, parseDurationS, printJson, type CliRunner } from '../../platform/cli.js';
import { parseDurationMs } from '../../platform/config.js';
import { Jti, RevokeTokensInput } from './revocations.js';
import { MAX_TOKEN_TTL_S, type TokenService } from './service.js';
import { ROLES, Subject, type Role } from './types.js';

/** What the `broker token` verbs run on. */
export interface TokenCliDeps {
  tokens: TokenService;
}

/**
 * Parses `--grace` of `rotate-key`: `0` (or `0s`, `0m`, …: no grace, old tokens stop at once) or
 * a duration {@link parseDurationMs} reads, at most {@link MAX_TOKEN_TTL_S} (a longer grace
 * would outlive every token the old key signed).
 * @returns milliseconds.
 * @throws CliExit when it is not such a duration.
 */
export function parseGraceMs(text: string): number {
  if (/^0+(ms|s|m|h|d)?$/.test(text.trim())) return 0;
  const millis = parseDurationMs(text);
  if (millis === null) throw new CliExit(`--grace: "${text}" is not a duration such as 0, 90s, 15m, 8h or 30d`);
  if (millis > MAX_TOKEN_TTL_S * 1000) throw new CliExit(`--grace: at most ${MAX_TOKEN_TTL_S / 86400}d (the longest token lifetime)`);
  return Math.floor(millis);
}

const RotateOptions = z.strictObject({
  reason: z.string({ error: 'a reason is required' }).trim().min(1, 'a reason is required').max(1000),
  grace: z.string(),
});

const ListOptions = z.strictObject({
  jti: Jti.optional(),
  subject: Subject.optional(),
  limit: z.coerce.number().int().min(1).max(1000),
});

/** Turns zod issues into one CLI line naming the options (`--reason: give a reason`). */
function optionIssues(error: z.ZodError): string {
  return error.issues.map((i) => (i.path.length > 0 ? `--${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
}

/**
 * Registers the `broker token` commands:
 * - `broker token --role operator|auditor --subject NAME --ttl 8h`: prints a bearer token signed
 *   with the broker's key (the data directory's `token.key`) on stdout, and audits `token.issued`
 *   (role, subject, jti, expiry; never the token).
 * - `broker token revoke --jti ID --reason TEXT` or `broker token revoke --subject NAME
 *   [--role R] --reason TEXT`: revokes one token, or every token of that subject (of that role)
 *   issued up to now; writes the revocation and the audit row `token.revoked` in one transaction
 *   and prints the revocation as JSON. Revoking what is already revoked writes nothing, says so on
 *   stderr and exits 0.
 * - `broker token revocations [--jti ID] [--subject NAME] [--limit N]`: `{data: [...]}` on stdout.
 * - `broker token rotate-key --reason TEXT [--grace DURATION]`: replaces `token.key` with a new
 *   key; tokens signed by the old one keep verifying for the grace (default
 *   {@link MAX_TOKEN_TTL_S}, i.e. until they expire; `0` stops them at once), on every server
 *   from its next request. Audits `token.key_rotated` and prints `{old_kid, new_kid,
 *   old_verifies_until}` (see `TokenService.rotateSigningKey` for the crash-safe order).
 * - `broker token keys`: `{data: [TokenKeyView]}`, the registered public keys (never a private key).
 * Bad or missing options exit 1 with the reason (CliExit), before anything is read or written.
 *
 * `token` has both its own action and subcommands, so it uses commander's positional options (the
 * program must enable them too, see `src/main.ts`): `--subject`/`--role` after `revoke` belong to
 * `revoke`, before it to `token`. `--role`/`--subject` of `token` are checked in its action, not
 * with `requiredOption` (commander would demand them for the subcommands as well).
 */
export function registerTokenCommands(program: Command, withDeps: CliRunner<TokenCliDeps>): void {
  const token = program
    .command('token')
    .description('mint an operator or auditor bearer token (printed on stdout; treat it as a password); revoke tokens; rotate the signing key')
    .enablePositionalOptions()
    .option('--role <role>', `${ROLES.join(' | ')} (required)`)
    .option('--subject <name>', 'who holds it, audited as <role>:<name> (required)')
    .option('--ttl <duration>', `lifetime, e.g. 8h (at most ${MAX_TOKEN_TTL_S / 86400}d)`, '8h')
    .action((opts: { role?: string; subject?: string; ttl: string }) =>
      withDeps(async (deps) => {
        if (opts.role === undefined || !(ROLES as readonly string[]).includes(opts.role)) throw new CliExit(`--role must be one of ${ROLES.join(', ')}`);
        if (opts.subject === undefined || !Subject.safeParse(opts.subject).success) throw new CliExit('--subject: 1–128 of [A-Za-z0-9._@-]');
        const ttlS = parseDurationS(opts.ttl, '--ttl');
        if (ttlS > MAX_TOKEN_TTL_S) throw new CliExit(`--ttl: at most ${MAX_TOKEN_TTL_S / 86400}d`);
        const { token, claims } = await deps.tokens.issue(opts.role as Role, opts.subject, ttlS, cliOperator());
        process.stdout.write(`${token}\n`);
        process.stderr.write(`${claims.role} token for ${claims.subject}, expires ${new Date(claims.expiresAt).toISOString()}\n`);
      }),
    );
  token
    .command('revoke')
    .description('revoke one token (--jti) or every token of a subject issued up to now (--subject [--role]); refused from the next request on')
    .option('--jti <id>', 'the token id (the jti in its token.issued audit row)')
    .option('--subject <name>', 'revoke every token of this subject issued up to now')
    .option('--role <role>', `with --subject: only tokens of this role (${ROLES.join(' | ')})`)
    .option('--reason <text>', 'why (required, audited)')
    .action((opts: Record<string, string | undefined>) =>
      withDeps(async (deps) => {
        const parsed = RevokeTokensInput.safeParse(Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)));
        if (!parsed.success) throw new CliExit(`broker token revoke: ${optionIssues(parsed.error)} (use --jti ID or --subject NAME [--role R], and --reason TEXT)`);
        const { revocation, outcome } = await deps.tokens.revocations.revoke(parsed.data, cliOperator());
        printJson(revocation);
        const what = revocation.jti !== null ? `token ${revocation.jti}` : `tokens of ${revocation.role ?? 'every role'} ${revocation.subject} issued up to ${revocation.issued_before}`;
        process.stderr.write(
          outcome === 'already_revoked'
            ? `${what}: already revoked by ${revocation.revoked_by} at ${revocation.revoked_at} (${revocation.id}); nothing written\n`
            : `${what}: revoked (${revocation.id})\n`,
        );
      }),
    );
  token
    .command('rotate-key')
    .description('replace the token-signing key; tokens signed by the old key keep verifying for --grace')
    .option('--reason <text>', 'why (required, audited)')
    .option('--grace <duration>', `how long tokens signed by the old key still verify, 0 … ${MAX_TOKEN_TTL_S / 86400}d (0: refused at once)`, `${MAX_TOKEN_TTL_S / 86400}d`)
    .action(async (opts: Record<string, string | undefined>) => {
      const parsed = RotateOptions.safeParse(opts);
      if (!parsed.success) throw new CliExit(`broker token rotate-key: ${optionIssues(parsed.error)}`);
      const graceMs = parseGraceMs(parsed.data.grace);
      await withDeps(async (deps) => {
        const rotation = await deps.tokens.rotateSigningKey(graceMs, parsed.data.reason, cliOperator());
        printJson(rotation);
        process.stderr.write(`token.key now holds ${rotation.new_kid}; tokens signed by ${rotation.old_kid} verify until ${rotation.old_verifies_until}\n`);
      });
    });
  token
    .command('keys')
    .description('the token-signing public keys, oldest first: {data: [{kid, created_at, retired_at, verify_until, current}]}')
    .action(() =>
      withDeps(async (deps) => {
        printJson({ data: await deps.tokens.keys.list(deps.tokens.kid) });
      }),
    );
  token
    .command('revocations')
    .description('token revocations oldest first: {data: [...]}')
    .option('--jti <id>', 'only the revocation of this token id')
    .option('--subject <name>', 'only revocations of this subject')
    .option('--limit <n>', 'at most this many, 1–1000', '100')
    .action((opts: Record<string, string | undefined>) =>
      withDeps(async (deps) => {
        const parsed = ListOptions.safeParse(opts);
        if (!parsed.success) throw new CliExit(`invalid options: ${optionIssues(parsed.error)}`);
        const { items } = await deps.tokens.revocations.list({ jti: parsed.data.jti, subject: parsed.data.subject, limit: parsed.data.limit });
        printJson({ data: items });
      }),
    );
}
