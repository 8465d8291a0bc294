/**
 * What reaches the disk when (src/store/sqlite.ts): the fsyncs of the WAL file a real SQLite store makes for
 * durable writes, batches and soft writes, counted with strace on a child process doing only those writes.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ensureAptPackage } from '../helpers/apt.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';

const sqlite = new URL('../../src/store/sqlite.ts', import.meta.url).href;

/** fsyncs of the WAL while a child runs `writes` (a function body over `store`) on a store already created at `file`. */
function walFsyncs(file: string, writes: string): number {
  const strace = ensureAptPackage('/usr/bin/strace', 'strace');
  const marker = `${file}.marker`;
  const script = `
    import { accessSync } from 'node:fs';
    import { openSqliteStore } from '${sqlite}';
    const store = openSqliteStore(${JSON.stringify(file)});
    const mark = (m) => { try { accessSync(${JSON.stringify(marker)} + m); } catch {} };
    // The first write creates the WAL file, which SQLite syncs itself.
    store.write((tx) => tx.putSetting('warm', {}));
    mark('-begin');
    ${writes}
    mark('-end');
    store.close();`;
  const log = join(mkdtempSync(join(tmpdir(), 'tailplane-strace-')), 'trace');
  execFileSync(strace, ['-f', '-y', '-o', log, '-e', 'trace=fsync,fdatasync,access,faccessat,faccessat2', process.execPath, '--import', 'tsx', '--input-type=module', '-e', script]);
  const lines = readFileSync(log, 'utf8').split('\n');
  const from = lines.findIndex((l) => l.includes(`${marker}-begin`));
  const to = lines.findIndex((l) => l.includes(`${marker}-end`));
  assert.ok(from >= 0 && to > from, 'the child marked where its writes begin and end');
  return lines.slice(from, to).filter((l) => /\b(fsync|fdatasync)\(\d+<[^>]*-wal>/.test(l)).length;
}

test('a durable write is fsynced once, a batch or a group commit once in all, a soft write never', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'tailplane-durability-')), 'tailplane.sqlite');
  openSqliteStore(file).close();
  const put = (i: number | string) => `(tx) => tx.putSetting('k' + ${i}, { v: ${i} })`;
  assert.equal(walFsyncs(file, `for (let i = 0; i < 10; i++) store.write(${put('i')});`), 10, 'ten durable writes');
  assert.equal(walFsyncs(file, `store.transaction(() => { for (let i = 0; i < 10; i++) store.write(${put('i')}); });`), 1, 'one batch of ten');
  assert.equal(walFsyncs(file, `for (let i = 0; i < 10; i++) store.write(${put('i')}, { soft: true });`), 0, 'ten soft writes');
  const group = `const writes = []; for (let i = 0; i < 10; i++) writes.push(store.writeGrouped(${put('i')}).durable); await Promise.all(writes);`;
  assert.equal(walFsyncs(file, group), 1, 'ten writes of one group commit');
});
