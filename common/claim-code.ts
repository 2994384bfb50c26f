import { createHash, createHmac, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';

/**
 * The one-time claim code a new box shows on its LAN status page and its label (docs/image.md,
 * "Claiming"). Shared by the box (agent) and the fleet, so both read and commit to it the same way.
 *
 * 8 characters from Crockford's base32 alphabet (no I, L, O, U), shown as XXXX-XXXX: 40 bits,
 * with per-address and per-code attempt limits on the fleet. Reading it aloud or off a label is
 * forgiving: case, spaces and dashes do not matter, and I/L read as 1, O as 0.
 */
export const CLAIM_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const CLAIM_LEN = 8;

export function newClaimCode(rand: (n: number) => Buffer = randomBytes): string {
  // 40 bits = 5 bytes, read 5 bits at a time: every symbol equally likely (no modulo bias).
  const b = rand(5);
  let bits = 0n;
  for (const x of b) bits = (bits << 8n) | BigInt(x);
  let s = '';
  for (let i = CLAIM_LEN - 1; i >= 0; i--) s += CLAIM_ALPHABET[Number((bits >> BigInt(i * 5)) & 31n)];
  return formatClaimCode(s);
}

export function formatClaimCode(code: string): string {
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}

/** The code as typed, canonical (8 symbols, no dash), or null when it cannot be a claim code. */
export function normaliseClaimCode(typed: string): string | null {
  const s = typed.toUpperCase().replace(/[\s-]/g, '').replace(/[IL]/g, '1').replace(/O/g, '0');
  if (s.length !== CLAIM_LEN) return null;
  for (const c of s) if (!CLAIM_ALPHABET.includes(c)) return null;
  return s;
}

/** DER SubjectPublicKeyInfo of a key (public or private) or of a PEM public key. */
export function spkiDer(key: KeyObject | string): Buffer {
  const pub = typeof key === 'string' ? createPublicKey(key) : key.type === 'private' ? createPublicKey(key) : key;
  return pub.export({ type: 'spki', format: 'der' });
}

/**
 * What the box sends instead of the code: HMAC-SHA-256 keyed by the canonical code over the
 * box's public key. The fleet never stores the code itself, and a commitment is bound to one key:
 * it cannot be replayed with another CSR.
 */
export function claimCommitment(code: string, spki: Buffer): string {
  const c = normaliseClaimCode(code);
  if (!c) throw new Error('not a claim code');
  return createHmac('sha256', c).update('surgery-edge-claim/1\0').update(spki).digest('hex');
}

/**
 * Short fingerprint of the box's public key (XXXX-XXXX, hex), shown on the box's page and on the
 * fleet's "Waiting to be claimed" view so the engineer can see it is the same box.
 */
export function keyFingerprint(spki: Buffer): string {
  const h = createHash('sha256').update(spki).digest('hex').slice(0, 8).toUpperCase();
  return `${h.slice(0, 4)}-${h.slice(4)}`;
}
