/**
 * Opens the store the configuration names: SQLite in the data dir (the default) or PostgreSQL.
 */
import { readFileSync } from 'node:fs';
import { durationMs, type StoreConfig } from '../config/config.ts';
import { StoreUnavailableError } from './errors.ts';
import { openPostgresStore } from './postgres/store.ts';
import { openSqliteStore } from './sqlite.ts';
import type { Store } from './store.ts';

/** `sqlitePath` is asked only for an SQLite store (it prepares the file's place in the data dir). */
export function openStore(config: StoreConfig, sqlitePath: () => string): Store {
  if (config.type === 'sqlite') return openSqliteStore(sqlitePath());
  const pg = config.postgres;
  try {
    return openPostgresStore({
      url: pg.url,
      poolSize: pg.poolSize,
      timeoutMs: durationMs(pg.timeout)!,
      tls: pg.tls,
      ...(pg.caFile ? { ca: readFileSync(pg.caFile, 'utf8') } : {}),
    });
  } catch (err) {
    if (!(err instanceof StoreUnavailableError)) throw err;
    // Name the setting to fix, and where it points, without the URL's password.
    const { host, pathname } = new URL(pg.url);
    throw new StoreUnavailableError(`PostgreSQL at ${host}${pathname} (store.postgres.url) did not answer: ${err.message.replace(/^store unavailable: /, '')}`);
  }
}
