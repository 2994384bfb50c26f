import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  base32Decode,
  base32Encode,
  hotp,
  newRecoveryCodes,
  newTotpSecret,
  normalRecoveryCode,
  otpauthUri,
  recoveryCodeHash,
  totp,
  verifyTotp,
} from '../../common/totp.js';

const SEED = Buffer.from('12345678901234567890');

describe('TOTP (RFC 6238 / RFC 4226)', () => {
  it('matches RFC 6238 appendix B SHA1 vectors (8 digits)', () => {
    const vectors: [number, string][] = [
      [59, '94287082'],
      [1111111109, '07081804'],
      [1111111111, '14050471'],
      [1234567890, '89005924'],
      [2000000000, '69279037'],
      [20000000000, '65353130'],
    ];
    for (const [t, want] of vectors) assert.equal(totp(SEED, t * 1000, 8), want, `T=${t}`);
  });
  it('matches RFC 4226 appendix D HOTP values (6 digits)', () => {
    const want = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];
    want.forEach((w, i) => assert.equal(hotp(SEED, i), w));
  });
  it('base32 round-trips and decodes the RFC 4648 example', () => {
    assert.equal(base32Encode(Buffer.from('foobar')), 'MZXW6YTBOI');
    assert.equal(base32Decode('mzxw 6ytb oi======').toString(), 'foobar');
    assert.throws(() => base32Decode('MZ1W'), /base32/);
    const s = newTotpSecret();
    assert.equal(s.length, 32);
    assert.equal(base32Decode(s).length, 20);
  });
  it('accepts ±1 step, refuses 2 steps away, and refuses a used step (replay)', () => {
    const secret = base32Encode(SEED);
    const now = 1_700_000_015_000;
    const step = Math.floor(now / 30_000);
    const code = hotp(SEED, step);
    assert.equal(verifyTotp(secret, code, now), step);
    assert.equal(verifyTotp(secret, hotp(SEED, step - 1), now), step - 1);
    assert.equal(verifyTotp(secret, hotp(SEED, step + 1), now), step + 1);
    assert.equal(verifyTotp(secret, hotp(SEED, step - 2), now), null);
    assert.equal(verifyTotp(secret, code, now, { usedStep: step }), null);
    assert.equal(verifyTotp(secret, hotp(SEED, step - 1), now, { usedStep: step }), null);
    assert.equal(verifyTotp(secret, '12345', now), null);
    assert.equal(verifyTotp(secret, 'abcdef', now), null);
  });
  it('builds an otpauth URI apps read', () => {
    const u = new URL(otpauthUri({ issuer: 'surgery-edge fleet', account: 'amy', secret: 'MZXW6YTBOI' }));
    assert.equal(u.protocol, 'otpauth:');
    assert.equal(u.searchParams.get('secret'), 'MZXW6YTBOI');
    assert.equal(u.searchParams.get('period'), '30');
    // Key Uri Format: "issuer:account" label, RFC 3986 encoding (%20, never "+").
    assert.equal(
      otpauthUri({ issuer: 'NHS Test ICB', account: 'amy.b', secret: 'MZXW6YTBOI' }),
      'otpauth://totp/NHS%20Test%20ICB:amy.b?secret=MZXW6YTBOI&issuer=NHS%20Test%20ICB&algorithm=SHA1&digits=6&period=30',
    );
  });
  it('recovery codes: 10 distinct 80-bit codes, typed loosely, hashed per account', () => {
    const codes = newRecoveryCodes();
    assert.equal(codes.length, 10);
    assert.equal(new Set(codes).size, 10);
    for (const c of codes) assert.match(c, /^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/);
    const c = codes[0]!;
    assert.equal(normalRecoveryCode(` ${c.toUpperCase().replace(/-/g, ' ')} `), c.replace(/-/g, ''));
    for (const bad of ['', '123456', `${c}a`, c.slice(0, 18), c.replace(/^./, '1'), 'aaaa-bbbb-cccc-ddd!']) assert.equal(normalRecoveryCode(bad), null, bad);
    assert.equal(recoveryCodeHash('amy', c), recoveryCodeHash('amy', c.toUpperCase()));
    assert.notEqual(recoveryCodeHash('amy', c), recoveryCodeHash('bob', c), 'the same code on two accounts hashes apart');
    assert.notEqual(recoveryCodeHash('amy', c), recoveryCodeHash('amy', codes[1]!));
    assert.ok(!recoveryCodeHash('amy', c).includes(c.replace(/-/g, '')));
  });
});
