// The migration runner: applies migrations/NNN_*.sql in order, each in one transaction, recorded in schema_migrations.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SqlClient } from './sql-client.js';

export interface Migration {
  /** File name, e.g. "001_init.sql"; the order key and the record in schema_migrations. */
  name: string;
  sql: string;
}

/** Where the SQL files sit next to this module (a bundler that moves the code must pass migrations explicitly). */
export const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

const MIGRATION_FILE = /^\d+_[\w-]+\.sql$/;

/** The migration files of `dir`, in name order. */
export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const names = (await readdir(dir)).filter((n) => MIGRATION_FILE.test(n)).sort();
  return Promise.all(names.map(async (name) => ({ name, sql: await readFile(join(dir, name), 'utf8') })));
}

/**
 * Applies the migrations not yet recorded, in order, and returns the names it applied.
 * Each runs in its own transaction under a table lock, so two runners at once apply it once.
 */
export async function runMigrations(client: SqlClient, migrations?: Migration[]): Promise<string[]> {
  const all = migrations ?? (await loadMigrations());
  await client.query(
    `CREATE TABLE IF NOT EXISTS schema_migrations (
       name text PRIMARY KEY,
       applied_at timestamptz NOT NULL DEFAULT now()
     )`,
  );
  const recorded = await client.query('SELECT name FROM schema_migrations');
  const done = new Set(recorded.map((r) => String(r.name)));
  const applied: string[] = [];
  for (const migration of all) {
    if (done.has(migration.name)) continue;
    const ran = await client.transaction(async (tx) => {
      await tx.query('LOCK TABLE schema_migrations IN EXCLUSIVE MODE');
      const again = await tx.query('SELECT name FROM schema_migrations WHERE name = $1::text', [migration.name]);
      if (again.length > 0) return false;
      await tx.exec(migration.sql);
      await tx.query('INSERT INTO schema_migrations (name) VALUES ($1::text)', [migration.name]);
      return true;
    });
    if (ran) applied.push(migration.name);
  }
  return applied;
}
