/** Unit tests of key text helpers and the persisted server Noise key. */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { formatKey, isKeyText, loadOrCreateNoiseKey, noiseKeyFileName, parseKey, zeroKeyText } from '../../src/control/noise/keys.ts';

const hex = 'ab'.repeat(32);

test('key text: exact prefix and 64 lowercase hex characters; all-zero means absent', () => {
  assert.equal(formatKey('nodekey:', Buffer.from(hex, 'hex')), `nodekey:${hex}`);
  assert.deepEqual(Buffer.from(parseKey('mkey:', `mkey:${hex}`)!), Buffer.from(hex, 'hex'));
  // Keys are indexed by their text: only the canonical (lowercase) form is a key.
  assert.throws(() => parseKey('discokey:', `discokey:${hex.toUpperCase()}`), /exactly 64 hex characters, lowercase/);
  assert.equal(isKeyText('nodekey:', `nodekey:${hex.slice(0, 63)}B`), false);
  assert.equal(parseKey('nodekey:', zeroKeyText('nodekey:')), undefined);
  assert.throws(() => parseKey('mkey:', `nodekey:${hex}`), /must start with "mkey:"/);
  assert.throws(() => parseKey('mkey:', `mkey:${hex}00`), /exactly 64 hex/);
  assert.throws(() => parseKey('mkey:', `mkey:${hex.slice(2)}zz`), /exactly 64 hex/);
  assert.throws(() => parseKey('mkey:', ''), /must start/);
  assert.throws(() => formatKey('mkey:', new Uint8Array(31)), /32 bytes/);
  assert.equal(isKeyText('nodekey:', `nodekey:${hex}`), true);
  assert.equal(isKeyText('nodekey:', ''), false);
  assert.equal(isKeyText('nodekey:', 42), false);
});

test('server Noise key: created 0600 on first start, identical after restart, permissions tightened', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tp-keys-'));
  try {
    const a = loadOrCreateNoiseKey(join(dir, 'data'));
    const file = join(dir, 'data', noiseKeyFileName);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.match(readFileSync(file, 'utf8'), /^privkey:[0-9a-f]{64}\n$/);
    const b = loadOrCreateNoiseKey(join(dir, 'data'));
    assert.deepEqual(Buffer.from(b.publicKey), Buffer.from(a.publicKey));
    assert.deepEqual(Buffer.from(b.privateKey), Buffer.from(a.privateKey));
    chmodSync(file, 0o644);
    loadOrCreateNoiseKey(join(dir, 'data'));
    assert.equal(statSync(file).mode & 0o777, 0o600);
    writeFileSync(file, 'garbage');
    assert.throws(() => loadOrCreateNoiseKey(join(dir, 'data')), /not a Noise private key/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
