/**
 * The data dir belongs to one server and one OS user: it is made 0700 and every file in it 0600 whatever
 * existed before, and an exclusive lock taken at start refuses a second server on the same dir (two servers
 * would each keep their own memory of the tailnet and diverge).
 */
import Database from 'better-sqlite3';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../config/config.ts';

const lockFile = 'tailplane.lock';
const pidFile = 'tailplane.pid';

export interface DataDir {
  /** Problems found and fixed on the way in (a dir readable by others), for the log. */
  readonly warnings: string[];
  /** Creates a file that does not exist yet with mode 0600, so what is written into it is never readable by others. */
  privateFile(name: string): string;
  /** Sets every file in the dir to 0600 (SQLite's -wal and -shm appear after open). */
  tighten(): void;
  /** Releases the lock. */
  release(): void;
}

/** Creates or tightens the data dir and locks it; throws ConfigError when another server holds it. */
export function openDataDir(dir: string): DataDir {
  const warnings: string[] = [];
  if (existsSync(dir)) {
    const mode = statSync(dir).mode & 0o777;
    if (mode & 0o077) warnings.push(`data dir ${dir} was mode 0${mode.toString(8)}, readable by other users: set it to 0700`);
  } else {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  chmodSync(dir, 0o700);
  const lock = acquire(dir);
  const tighten = () => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const path = join(dir, entry.name);
      if ((statSync(path).mode & 0o777) !== 0o600) chmodSync(path, 0o600);
    }
  };
  tighten();
  return {
    warnings,
    privateFile(name) {
      const path = join(dir, name);
      closeSync(openSync(path, 'a', 0o600));
      return path;
    },
    tighten,
    release: () => lock.close(),
  };
}

/**
 * An exclusive SQLite lock on a small file: the OS releases it when the process ends however it ends, so a
 * crashed server never leaves a stale lock behind.
 */
function acquire(dir: string): Database.Database {
  const path = join(dir, lockFile);
  closeSync(openSync(path, 'a', 0o600));
  const db = new Database(path, { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER); DELETE FROM holder; INSERT INTO holder VALUES (1)');
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
    const pid = readPid(dir);
    throw new ConfigError(
      `data dir ${dir} is in use by another tailplane server${pid ? ` (pid ${pid})` : ''}: stop it, or give this one its own data_dir (--data-dir)`,
    );
  }
  writeFileSync(join(dir, pidFile), `${process.pid}\n`, { mode: 0o600 });
  return db;
}

function readPid(dir: string): string | undefined {
  try {
    return /^\d+/.exec(readFileSync(join(dir, pidFile), 'utf8'))?.[0];
  } catch {
    return undefined;
  }
}
