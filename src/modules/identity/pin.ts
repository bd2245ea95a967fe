/**
 * The master key's pin: a database remembers which `master.key` its group keys were made under,
 * so a process that opens it with another key (a replica whose data directory holds a fresh
 * `master.key` instead of the shared one, or a restored directory) refuses to start instead of
 * deriving group secrets no agent holds: every signature would fail there, silently.
 *
 * The pin is `HMAC-SHA256(master key, "nanoclaw-broker/master-key-pin")` in hex, stored in
 * `broker_meta` under `master_key_pin` by the first process that opens the database; a MAC of a
 * constant tells nothing about the key.
 */
import { createHmac } from 'node:crypto';
import { ConfigError } from '../../platform/config.js';
import type { Database } from '../../platform/db/database.js';

/** The `broker_meta` key of the pin. */
export const MASTER_KEY_PIN = 'master_key_pin';

/** The pin of `masterKey`: 64 hex characters. */
export function masterKeyPin(masterKey: Buffer): string {
  return createHmac('sha256', masterKey).update('nanoclaw-broker/master-key-pin').digest('hex');
}

/**
 * Records the pin of `masterKey` when the database has none (its first start, or the first after
 * an upgrade), else compares it with the recorded one.
 * @param masterPath the `master.key` file, for the message.
 * A database that cannot be written now stays unpinned until a start that can write.
 * @throws ConfigError when the database was pinned to another master key (nothing is written);
 *   the driver's error when the database cannot be read.
 */
export async function pinMasterKey(database: Database, masterKey: Buffer, masterPath: string): Promise<void> {
  const pin = masterKeyPin(masterKey);
  const recorded = await readPin(database);
  if (recorded === undefined) {
    // The first start (or the first since an upgrade) pins the key. A database that takes no
    // writes now (read-only, full) is pinned by the next start that can write; its readiness
    // probe says why it cannot serve meanwhile.
    await writePin(database, pin).catch(() => undefined);
    const now = await readPin(database);
    if (now === undefined || now === pin) return;
    throw mismatch(masterPath);
  }
  if (recorded !== pin) throw mismatch(masterPath);
}

async function readPin(database: Database): Promise<string | undefined> {
  if (database.engine === 'sqlite') {
    return (database.db.sqlite.prepare('SELECT value FROM broker_meta WHERE key = ?').get(MASTER_KEY_PIN) as { value: string } | undefined)?.value;
  }
  return (await database.pg.pool.query<{ value: string }>('SELECT value FROM broker_meta WHERE key = $1', [MASTER_KEY_PIN])).rows[0]?.value;
}

async function writePin(database: Database, pin: string): Promise<void> {
  if (database.engine === 'sqlite') {
    database.db.sqlite.prepare('INSERT INTO broker_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING').run(MASTER_KEY_PIN, pin);
    return;
  }
  await database.pg.pool.query('INSERT INTO broker_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [MASTER_KEY_PIN, pin]);
}

function mismatch(masterPath: string): ConfigError {
  return new ConfigError(
    `${masterPath} is not the master key this database's group keys were made under: every agent's signature would fail here. ` +
      'Copy the master.key the other replicas (or the original data directory) use into this data directory, mode 0600. Nothing was changed.',
  );
}
