import { randomBytes } from 'node:crypto';

/**
 * Unique, lexicographically sortable ids (ULID layout: 48-bit ms timestamp + 80 random bits,
 * Crockford base32). Monotonic within one process so events created in the same millisecond
 * still sort in creation order.
 */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
let lastTime = -1;
let lastRandom: number[] = [];

function encodeTime(t: number): string {
  let out = '';
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[t % 32] + out;
    t = Math.floor(t / 32);
  }
  return out;
}

export function ulid(now: number = Date.now()): string {
  if (now <= lastTime) {
    // Same (or earlier, clock stepped back) millisecond: increment the random part.
    now = lastTime;
    for (let i = lastRandom.length - 1; i >= 0; i--) {
      if (lastRandom[i]! < 31) {
        lastRandom[i]!++;
        break;
      }
      lastRandom[i] = 0;
    }
  } else {
    lastTime = now;
    const bytes = randomBytes(16);
    lastRandom = Array.from({ length: 16 }, (_, i) => bytes[i]! % 32);
  }
  return encodeTime(now) + lastRandom.map((d) => ALPHABET[d]).join('');
}
