import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isAppError } from '../../../common/errors.js';
import { loadTrustedKeys, type TrustedKey } from '../../../agent/src/update/keys.js';
import { slotImage } from '../../../agent/src/update/manifest.js';
import { verifyBundle, type VerifyOptions } from '../../../agent/src/update/verify.js';
import { hostArch, makeBundle, makeKeys, makePayload, sha256, type Keys } from '../../helpers/update-fixture.js';

let dir: string;
let icb: Keys;
let rogue: Keys;
let trusted: TrustedKey[];
let payload: string;
let good: string;
const arch = hostArch();
const other = arch === 'amd64' ? 'arm64' : 'amd64';

const opts = (o: Partial<VerifyOptions> = {}): VerifyOptions => ({ keys: trusted, arch, currentVersion: '0.1.0', maxPayloadBytes: 1 << 30, ...o });

/** Verify a file or buffer; returns the error code (or 'OK') and what reached the payload sink. */
async function check(src: string | Buffer, o: Partial<VerifyOptions> = {}) {
  let sunk = 0;
  let pulled = 0;
  async function* counted(): AsyncGenerator<Buffer> {
    const it = typeof src === 'string' ? createReadStream(src, { highWaterMark: 16 * 1024 }) : [src];
    for await (const c of it as AsyncIterable<Buffer>) {
      pulled += c.length;
      yield c;
    }
  }
  try {
    const r = await verifyBundle(counted(), opts({ ...o, onPayload: (c) => void (sunk += c.length) }));
    return { code: 'OK', sunk, pulled, r };
  } catch (e) {
    assert.ok(isAppError(e), `expected an AppError, got ${String(e)}`);
    return { code: e.code, sunk, pulled, message: e.message };
  }
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'se-verify-'));
  icb = makeKeys(dir, 'icb');
  rogue = makeKeys(dir, 'rogue');
  execFileSync('mkdir', ['-p', join(dir, 'trusted')]);
  writeFileSync(join(dir, 'trusted', 'icb.pem'), readFileSync(icb.pub));
  trusted = loadTrustedKeys(join(dir, 'trusted'));
  payload = makePayload(dir, 3 * 1024 * 1024 + 123);
  good = makeBundle({ key: icb.priv, version: '0.2.0', payload, out: join(dir, 'good.seb') });
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('update bundle verification', () => {
  it('accepts a bundle signed by the ICB key and streams exactly the payload', async () => {
    const r = await check(good);
    assert.equal(r.code, 'OK');
    assert.equal(r.sunk, readFileSync(payload).length);
    assert.equal(r.r && slotImage(r.r.manifest).sha256, sha256(readFileSync(payload)));
    assert.equal(r.r?.manifest.version, '0.2.0');
  });

  it('refuses an unsigned bundle (UPDATE_UNSIGNED) without passing on a payload byte', async () => {
    const d = join(dir, 'unsigned');
    execFileSync('mkdir', ['-p', d]);
    execFileSync('tar', ['-xf', good, '-C', d]);
    const out = join(dir, 'unsigned.seb');
    execFileSync('tar', ['--format=ustar', '-C', d, '-cf', out, 'manifest.json', 'payload']);
    const r = await check(out);
    assert.equal(r.code, 'UPDATE_UNSIGNED');
    assert.equal(r.sunk, 0);
  });

  it('refuses a bundle signed by another key (UPDATE_UNTRUSTED_KEY) after reading only its first kilobytes', async () => {
    const bad = makeBundle({ key: rogue.priv, version: '0.2.0', payload, out: join(dir, 'rogue.seb') });
    const r = await check(bad);
    assert.equal(r.code, 'UPDATE_UNTRUSTED_KEY');
    assert.equal(r.sunk, 0);
    assert.ok(r.pulled <= 64 * 1024, `pulled ${r.pulled} bytes of a 3 MB bundle before refusing`);
  });

  it('refuses a bundle whose signature does not match its manifest (UPDATE_BAD_SIGNATURE)', async () => {
    // Same length edit inside the signed manifest: "0.2.0" -> "0.3.0" (then fix the tar header checksum).
    const b = Buffer.from(readFileSync(good));
    const at = b.indexOf('"version":"0.2.0"');
    b.write('"version":"0.3.0"', at);
    const r = await check(b);
    assert.equal(r.code, 'UPDATE_BAD_SIGNATURE');
    assert.equal(r.sunk, 0);
  });

  it('refuses a rogue-signed manifest that claims the trusted keyId (UPDATE_BAD_SIGNATURE)', async () => {
    const b = Buffer.from(readFileSync(join(dir, 'rogue.seb')));
    const rogueId = JSON.parse(execFileSync('tar', ['-xOf', join(dir, 'rogue.seb'), 'manifest.json']).toString()).keyId as string;
    const at = b.indexOf(rogueId);
    b.write(trusted[0]!.keyId, at);
    const r = await check(b);
    assert.equal(r.code, 'UPDATE_BAD_SIGNATURE');
  });

  it('refuses downgrades and re-installs of the running version (UPDATE_DOWNGRADE), and versions below the committed floor', async () => {
    assert.equal((await check(good, { currentVersion: '0.2.0' })).code, 'UPDATE_DOWNGRADE');
    assert.equal((await check(good, { currentVersion: '0.3.0' })).code, 'UPDATE_DOWNGRADE');
    assert.equal((await check(good, { currentVersion: '0.1.0', floorVersion: '0.2.0' })).code, 'UPDATE_DOWNGRADE');
    assert.equal((await check(good, { currentVersion: '0.2.0-rc.1' })).code, 'OK');
  });

  it('refuses a bundle for the other architecture (UPDATE_WRONG_ARCH)', async () => {
    const b = makeBundle({ key: icb.priv, version: '0.2.0', arch: other, payload, out: join(dir, 'other-arch.seb') });
    const r = await check(b);
    assert.equal(r.code, 'UPDATE_WRONG_ARCH');
    assert.equal(r.sunk, 0);
  });

  it('refuses a bundle whose version is not the one the fleet asked for (UPDATE_VERSION_MISMATCH)', async () => {
    assert.equal((await check(good, { expectedVersion: '0.2.1' })).code, 'UPDATE_VERSION_MISMATCH');
  });

  it('refuses a payload larger than the slot (UPDATE_TOO_LARGE) before writing any of it', async () => {
    const r = await check(good, { maxPayloadBytes: 1024 * 1024 });
    assert.equal(r.code, 'UPDATE_TOO_LARGE');
    assert.equal(r.sunk, 0);
  });

  it('refuses a bundle cut short anywhere (UPDATE_TRUNCATED)', async () => {
    const b = readFileSync(good);
    const size = readFileSync(payload).length;
    // Three headers, manifest and signature one block each, the payload padded to a block, two zero blocks.
    const payloadEnd = 5 * 512 + size;
    const archiveEnd = 5 * 512 + Math.ceil(size / 512) * 512 + 1024;
    for (const cut of [100, 600, 1100, 1600, 2100, 2600, Math.floor(b.length / 2), payloadEnd - 1, payloadEnd + 10, archiveEnd - 1]) {
      const r = await check(b.subarray(0, cut));
      assert.equal(r.code, 'UPDATE_TRUNCATED', `cut at ${cut} of ${b.length}: got ${r.code} ${r.message ?? ''}`);
    }
  });

  it('refuses a bundle with one payload byte flipped (UPDATE_CORRUPT)', async () => {
    const b = Buffer.from(readFileSync(good));
    b[1536 + 1_000_000]! ^= 0x01;
    assert.equal((await check(b)).code, 'UPDATE_CORRUPT');
  });

  it('refuses what is not a bundle (UPDATE_MALFORMED), and data appended after one', async () => {
    assert.equal((await check(Buffer.alloc(4096, 0x41))).code, 'UPDATE_MALFORMED');
    const extra = Buffer.concat([readFileSync(good), Buffer.alloc(512, 0x42)]);
    assert.equal((await check(extra)).code, 'UPDATE_MALFORMED');
  });

  it('passes the payload on in bounded chunks, never the whole payload at once', async () => {
    let largest = 0;
    async function* src(): AsyncGenerator<Buffer> {
      for await (const c of createReadStream(good, { highWaterMark: 64 * 1024 })) yield c as Buffer;
    }
    await verifyBundle(src(), opts({ onPayload: (c) => void (largest = Math.max(largest, c.length)) }));
    assert.ok(largest <= 64 * 1024, `largest chunk ${largest}`);
  });
});
