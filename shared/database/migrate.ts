import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { type Database, DatabaseError, QUERY_CANCELED, sql } from './database.ts';
import { splitStatements } from './named-parameters.ts';

export const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

export interface Migration {
  readonly name: string;
  readonly script: string;
}

export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{4}-[a-z0-9-]+\.sql$/.test(f)).sort();
  return Promise.all(files.map(async (name) => ({ name, script: await readFile(`${dir}/${name}`, 'utf8') })));
}

/**
 * Applies the migrations not yet recorded, in name order, one statement per call (the Data API runs one
 * statement at a time, and DDL inside its transactions commits them, so each migration must be written to
 * be re-runnable: `IF NOT EXISTS`). A migration whose recorded checksum differs from the file is refused.
 */
export async function migrate(db: Database, migrations: readonly Migration[]): Promise<string[]> {
  await db.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
    name text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`);
  const { rows } = await db.query<{ name: string; checksum: string }>(
    'SELECT name, checksum FROM schema_migrations',
  );
  const applied = new Map(rows.map((r) => [r.name, r.checksum]));
  const done: string[] = [];
  for (const migration of migrations) {
    const checksum = createHash('sha256').update(migration.script).digest('hex');
    const recorded = applied.get(migration.name);
    if (recorded !== undefined) {
      if (recorded !== checksum)
        throw new Error(`migration ${migration.name} was changed after it was applied`);
      continue;
    }
    const statements = splitStatements(migration.script);
    for (const [index, statement] of statements.entries()) {
      try {
        await db.query(statement);
      } catch (error) {
        throw migrationFailure(migration.name, index, statements.length, error);
      }
    }
    await db.query('INSERT INTO schema_migrations (name, checksum) VALUES (:name, :checksum)', {
      name: sql.text(migration.name),
      checksum: sql.text(checksum),
    });
    done.push(migration.name);
  }
  return done;
}

/**
 * Which migration and statement failed, with the database's own error as the cause. A timed-out statement
 * may still be running on the cluster (the migration custom resource runs with `continueAfterTimeout`):
 * every statement can run again, so the next deployment resumes where this one stopped.
 */
function migrationFailure(name: string, index: number, count: number, error: unknown): Error {
  const where = `migration ${name}, statement ${index + 1} of ${count}`;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof DatabaseError && error.code === QUERY_CANCELED) {
    return new DatabaseError(
      `${where} timed out: it may still be running on the cluster; every statement can run again, so deploy again once it has finished (${message})`,
      QUERY_CANCELED,
      { cause: error },
    );
  }
  return new DatabaseError(
    `${where} failed: ${message}`,
    error instanceof DatabaseError ? error.code : undefined,
    { cause: error },
  );
}
