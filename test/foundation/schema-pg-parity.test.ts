/**
 * The PostgreSQL schema (`src/schema.pg.ts`) mirrors the SQLite one (`src/schema.ts`) table by
 * table: same table, column, index, constraint and key names, nullability, defaults and keys. A
 * table or column added to one engine only fails here, before a store reads it on the other.
 */
import { is } from 'drizzle-orm';
import { getTableConfig as pgConfig, PgTable } from 'drizzle-orm/pg-core';
import { getTableConfig as sqliteConfig, SQLiteTable } from 'drizzle-orm/sqlite-core';
import { describe, expect, it } from 'vitest';
import * as pgSchema from '../../src/schema.pg.js';
import * as sqliteSchema from '../../src/schema.js';

type Shape = {
  columns: Record<string, { notNull: boolean; primary: boolean; hasDefault: boolean | null; unique: boolean }>;
  primaryKeys: string[][];
  indexes: Record<string, { unique: boolean; columns: string[]; partial: boolean }>;
  checks: string[];
  uniques: string[];
  foreignKeys: number;
};

const colName = (c: unknown) => (c as { name?: string }).name ?? '<expression>';

function shape(cfg: ReturnType<typeof pgConfig> | ReturnType<typeof sqliteConfig>): Shape {
  return {
    columns: Object.fromEntries(
      // A key's default is engine-specific (SQLite's rowid, PostgreSQL's identity): compared for other columns only.
      cfg.columns.map((c) => [c.name, { notNull: c.notNull, primary: c.primary, hasDefault: c.primary ? null : c.hasDefault, unique: c.isUnique }]),
    ),
    primaryKeys: cfg.primaryKeys.map((pk) => pk.columns.map((c) => c.name)),
    indexes: Object.fromEntries(
      cfg.indexes.map((i) => [i.config.name, { unique: i.config.unique, columns: i.config.columns.map(colName), partial: i.config.where !== undefined }]),
    ),
    checks: cfg.checks.map((c) => c.name).sort(),
    uniques: cfg.uniqueConstraints.map((u) => u.getName() ?? '').sort(),
    foreignKeys: cfg.foreignKeys.length,
  };
}

const sqliteTables = (Object.values(sqliteSchema) as unknown[]).filter((t) => is(t, SQLiteTable)) as SQLiteTable[];
const pgTables = new Map(
  ((Object.values(pgSchema) as unknown[]).filter((t) => is(t, PgTable)) as PgTable[]).map((t) => [pgConfig(t).name, t]),
);

describe('the PostgreSQL schema mirrors the SQLite schema', () => {
  it('has exactly the same tables', () => {
    expect([...pgTables.keys()].sort()).toEqual(sqliteTables.map((t) => sqliteConfig(t).name).sort());
  });

  it.each(sqliteTables.map((t) => [sqliteConfig(t).name, t] as const))('%s: same columns, keys, indexes and constraints', (name, table) => {
    const pg = pgTables.get(name);
    expect(pg, `no PostgreSQL table ${name}`).toBeDefined();
    expect(shape(pgConfig(pg!))).toEqual(shape(sqliteConfig(table)));
  });
});
