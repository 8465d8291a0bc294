/**
 * Durability of SQLite commits, which run under synchronous=NORMAL (their WAL frames written, not fsynced): a
 * durable write's commit is fsynced at once (syncNow); a group's on libuv's thread pool, which then settles it.
 * One fsync runs at a time; groups committed while it runs wait for the next, which covers all of them.
 * A checkpoint in between is safe: with NORMAL, SQLite fsyncs the WAL before copying it into the database.
 */
import { closeSync, fsync, fsyncSync, openSync } from 'node:fs';
import type { Group } from './group.ts';

export interface WalSync {
  /** Settles `g` once everything committed so far is on disk. */
  sync(g: Group): void;
  /** Makes everything committed so far durable before returning (a durable write's commit). */
  syncNow(): void;
  /** Makes what is waiting durable now (synchronously) and releases the file. */
  close(): void;
}

/** `walPath` undefined (an in-memory database): nothing to make durable, groups settle at once. */
export function walSync(walPath: string | undefined): WalSync {
  let fd: number | undefined;
  let running = false;
  let closed = false;
  let waiting: Group[] = [];
  const settle = (groups: Group[], err: unknown) => {
    for (const g of groups) {
      if (err) g.reject(err);
      else g.resolve();
    }
  };
  const next = () => {
    if (running || waiting.length === 0) return;
    const groups = waiting;
    waiting = [];
    try {
      fd ??= openSync(walPath!, 'r');
    } catch (err) {
      return settle(groups, err);
    }
    running = true;
    fsync(fd, (err) => {
      running = false;
      settle(groups, err);
      if (closed) release();
      else next();
    });
  };
  const release = () => {
    if (fd !== undefined) closeSync(fd);
    fd = undefined;
  };
  return {
    sync(g) {
      if (walPath === undefined) return g.resolve();
      waiting.push(g);
      next();
    },
    syncNow() {
      if (walPath !== undefined) fsyncSync((fd ??= openSync(walPath, 'r')));
    },
    close() {
      closed = true;
      const groups = waiting;
      waiting = [];
      try {
        if (groups.length) fsyncSync((fd ??= openSync(walPath!, 'r')));
        settle(groups, undefined);
      } catch (err) {
        settle(groups, err);
      }
      // An fsync still running closes the file when it ends.
      if (!running) release();
    },
  };
}
