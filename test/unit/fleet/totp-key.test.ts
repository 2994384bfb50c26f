import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { validateFleetConfig } from '../../../fleet/src/config.js';
import { TotpSealer } from '../../../fleet/src/totp-key.js';

const config = (dataDir: string, totpKeyPath = '') => {
  const r = validateFleetConfig({ dataDir, auth: { totpKeyPath } });
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.config;
};

describe('TOTP secrets sealed in the fleet store', () => {
  it('creates a 0600 key once, and a secret opens only for its own account under the same key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'totp-key-'));
    try {
      const a = TotpSealer.load(config(dir));
      const path = join(dir, 'totp.key');
      assert.equal(statSync(path).mode & 0o777, 0o600);
      const keyText = readFileSync(path, 'utf8');
      const sealed = a.seal('amy', 'JBSWY3DPEHPK3PXP');
      assert.ok(sealed.startsWith('v1:') && !sealed.includes('JBSWY3DPEHPK3PXP'));
      assert.equal(a.seal('amy', 'JBSWY3DPEHPK3PXP') === sealed, false, 'a fresh IV each time');
      const again = TotpSealer.load(config(dir));
      assert.equal(readFileSync(path, 'utf8'), keyText, 'the key is not replaced');
      assert.equal(again.open('amy', sealed), 'JBSWY3DPEHPK3PXP');
      assert.equal(again.open('bob', sealed), null, 'moved onto another account');
      const b = Buffer.from(sealed.slice(3), 'base64');
      b[b.length - 1]! ^= 1;
      assert.equal(again.open('amy', `v1:${b.toString('base64')}`), null, 'tampered');
      assert.equal(again.open('amy', 'garbage'), null);
      const other = TotpSealer.load(config(dir, join(dir, 'other.key')));
      assert.equal(other.open('amy', sealed), null, 'another key');
      writeFileSync(join(dir, 'bad.key'), 'c2hvcnQ=\n');
      assert.throws(() => TotpSealer.load(config(dir, join(dir, 'bad.key'))), /not a TOTP key/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
