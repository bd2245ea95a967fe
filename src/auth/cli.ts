import os from 'node:os';
import type { Command } from 'commander';
import ms from 'ms';
import { appendActivity } from '../audit/trail.js';
import { CliExit, withDeps } from '../cli/common.js';
import { immediate } from '../db/open.js';
import { MAX_TOKEN_TTL_S, ROLES, Subject, type Role } from './tokens.js';

/**
 * The actor recorded for an operator using the CLI on the broker host: `operator:<OS user>`.
 */
export function cliOperator(): string {
  const name = os.userInfo().username.replace(/[^A-Za-z0-9._@-]/g, '_') || 'unknown';
  return `operator:${name}`;
}

/**
 * Parses a human duration (`90s`, `15m`, `8h`, `7d`; a bare number is seconds) with `ms`.
 * @returns whole seconds.
 * @throws CliExit when it is not a positive duration.
 */
export function parseDurationS(text: string, option: string): number {
  const millis = /^\d+$/.test(text) ? Number(text) * 1000 : ms(text as ms.StringValue);
  if (typeof millis !== 'number' || !Number.isFinite(millis) || millis < 1000) throw new CliExit(`${option}: "${text}" is not a duration such as 90s, 15m, 8h or 7d`);
  return Math.floor(millis / 1000);
}

/**
 * Registers `broker token --role operator|auditor --subject NAME --ttl 8h`: prints a bearer token
 * signed with the broker's key (the data directory's `token.key`) on stdout, and audits
 * `token.issued` (role, subject, jti, expiry; never the token).
 */
export function registerTokenCommands(program: Command): void {
  program
    .command('token')
    .description('mint an operator or auditor bearer token (printed on stdout; treat it as a password)')
    .requiredOption('--role <role>', ROLES.join(' | '))
    .requiredOption('--subject <name>', 'who holds it (audited as <role>:<name>)')
    .option('--ttl <duration>', `lifetime, e.g. 8h (at most ${MAX_TOKEN_TTL_S / 86400}d)`, '8h')
    .action((opts: { role: string; subject: string; ttl: string }) =>
      withDeps(async (deps) => {
        if (!(ROLES as readonly string[]).includes(opts.role)) throw new CliExit(`--role must be one of ${ROLES.join(', ')}`);
        if (!Subject.safeParse(opts.subject).success) throw new CliExit('--subject: 1–128 of [A-Za-z0-9._@-]');
        const ttlS = parseDurationS(opts.ttl, '--ttl');
        if (ttlS > MAX_TOKEN_TTL_S) throw new CliExit(`--ttl: at most ${MAX_TOKEN_TTL_S / 86400}d`);
        const { token, claims } = await deps.tokens.mint(opts.role as Role, opts.subject, ttlS);
        immediate(deps.db, () =>
          appendActivity(
            deps.db,
            {
              actor: cliOperator(),
              kind: 'token.issued',
              subject: `${claims.role}:${claims.subject}`,
              detail: { role: claims.role, subject: claims.subject, jti: claims.jti, expires_at: new Date(claims.expiresAt).toISOString() },
            },
            deps.clock.now(),
          ),
        );
        process.stdout.write(`${token}\n`);
        process.stderr.write(`${claims.role} token for ${claims.subject}, expires ${new Date(claims.expiresAt).toISOString()}\n`);
      }),
    );
}
