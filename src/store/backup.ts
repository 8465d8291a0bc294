/**
 * Backup files of the SQLite store: checking that a file is a whole tailplane database (PRAGMA
 * integrity_check, a known schema version), telling whether a database is open in a running server, and
 * putting a checked backup in place as a data dir's database without leaving a half-written one.
 */
import Database from 'better-sqlite3';
import { chmodSync, closeSync, copyFileSync, constants, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { migrations } from './migrations.ts';
import { BackupError } from './errors.ts';
import { databaseFileName } from './sqlite.ts';

/** What a checked backup holds. */
export interface BackupInfo {
  readonly schemaVersion: number;
  readonly users: number;
  readonly nodes: number;
}

/** Opens `path` read-only and checks it page by page; throws BackupError saying why it cannot be restored. */
export function checkBackup(path: string): BackupInfo {
  if (!existsSync(path)) throw new BackupError(`${path} does not exist`);
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const problems = db.pragma('integrity_check', { simple: false }) as { integrity_check: string }[];
    const found = problems.map((p) => p.integrity_check).filter((p) => p !== 'ok');
    if (found.length) throw new BackupError(`${path} fails PRAGMA integrity_check: ${found.slice(0, 3).join('; ')}`);
    const hasSchema = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
    if (!hasSchema) throw new BackupError(`${path} is an SQLite database but not a tailplane one (no schema_migrations table)`);
    const { v } = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
    if (v === null || v > migrations.length) {
      throw new BackupError(`${path} has schema version ${v ?? 'none'}; this tailplane knows 1..${migrations.length}`);
    }
    const count = (table: string) => (db!.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
    return { schemaVersion: v, users: count('users'), nodes: count('nodes') };
  } catch (err) {
    if (err instanceof BackupError) throw err;
    throw new BackupError(`${path} is not a readable tailplane backup: ${(err as Error).message}`);
  } finally {
    db?.close();
  }
}

/**
 * Whether another process has this SQLite file open: a running server keeps its database (and the data dir's
 * lock file) open, which makes an exclusive transaction impossible. A closed database answers at once.
 */
export function inUse(path: string): boolean {
  if (!existsSync(path)) return false;
  const db = new Database(path, { timeout: 0, fileMustExist: true });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE; COMMIT');
    return false;
  } catch (err) {
    if ((err as { code?: string }).code === 'SQLITE_BUSY') return true;
    throw err;
  } finally {
    db.close();
  }
}

/** The pid a running server wrote into its data dir, when it did. */
function serverPid(dir: string): string | undefined {
  try {
    return /^\d+/.exec(readFileSync(join(dir, 'tailplane.pid'), 'utf8'))?.[0];
  } catch {
    return undefined;
  }
}

/**
 * Puts a checked backup in place as `dir`'s database (dir 0700, file 0600). Refuses while a server uses the
 * dir, and refuses to replace an existing database unless `force`. The copy is written beside the target and
 * renamed over it, so a crash leaves the old database or the new one, never half of one.
 */
export function restoreBackup(from: string, dir: string, force: boolean): BackupInfo & { path: string } {
  const info = checkBackup(from);
  const target = join(dir, databaseFileName);
  // tailplane.lock is the data dir's own lock (held by a running server); the database is open in one too.
  if (inUse(join(dir, 'tailplane.lock')) || inUse(target)) {
    const pid = serverPid(dir);
    throw new BackupError(`data dir ${dir} is in use by a running tailplane server${pid ? ` (pid ${pid})` : ''}: stop it first`);
  }
  if (existsSync(target) && !force) {
    throw new BackupError(`data dir ${dir} already has a database (${target}); pass --force to replace it`);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const partial = `${target}.restore-partial`;
  rmSync(partial, { force: true });
  copyFileSync(from, partial, constants.COPYFILE_EXCL);
  chmodSync(partial, 0o600);
  syncFile(partial);
  // The old database's WAL would be replayed onto the restored file: it goes before the rename.
  for (const suffix of ['-wal', '-shm']) rmSync(target + suffix, { force: true });
  renameSync(partial, target);
  syncFile(dir);
  return { ...info, path: target };
}

function syncFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
