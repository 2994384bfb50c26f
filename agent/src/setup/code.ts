import { randomBytes, randomInt, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/fs.js';

/**
 * The one-time set-up code (issue 16). 10 characters of Crockford base32 = 50 random bits, shown
 * as XXXXX-XXXXX. Where it lives:
 * - `<stateDir>/setup.json` (0600): only its scrypt hash (with salt), whether it is spent, and
 *   whether set-up is finished. A copied SD card does not give the code away;
 * - `<runDir>/setup-code` (0600, tmpfs): the plain code, for the telemetry report to the fleet
 *   (the ICB's device page) and `surgery-edge setup-code`. It is gone after a reboot, and a fresh
 *   code is issued then: the fleet shows the new one with the next report.
 * The plain code is never on a LAN page, never in the LAN API and never logged.
 */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const LEN = 10;
const SCRYPT = { N: 1 << 14, r: 8, p: 1 };

export interface SetupState {
  version: 1;
  /** Set-up finished: the wizard is gone for good. */
  done: boolean;
  doneAt: number | null;
  /** The current code's hash; null when none is issued. */
  code: { salt: string; hash: string; issuedAt: number; spent: boolean } | null;
}

export type CodeCheck = 'ok' | 'wrong' | 'spent' | 'done' | 'malformed';

export function generateCode(): string {
  let s = '';
  for (let i = 0; i < LEN; i++) s += ALPHABET[randomInt(ALPHABET.length)];
  return `${s.slice(0, 5)}-${s.slice(5)}`;
}

/** What people type: any case, spaces or dashes, O for 0 and I/L for 1 (Crockford). */
export function normaliseCode(input: string): string | null {
  const c = input.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
  if (c.length !== LEN || [...c].some((ch) => !ALPHABET.includes(ch))) return null;
  return c;
}

function hashCode(normalised: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(normalised, salt, 32, SCRYPT, (e, k) => (e ? reject(e) : resolve(k))));
}

export class SetupCodeStore {
  readonly statePath: string;
  readonly plainPath: string;
  constructor(dirs: { stateDir: string; runDir: string }) {
    this.statePath = join(dirs.stateDir, 'setup.json');
    this.plainPath = join(dirs.runDir, 'setup-code');
  }

  read(): SetupState {
    try {
      const s = JSON.parse(readFileSync(this.statePath, 'utf8')) as SetupState;
      if (s.version === 1 && typeof s.done === 'boolean') return s;
    } catch {
      /* missing or unreadable: not set up, no code */
    }
    return { version: 1, done: false, doneAt: null, code: null };
  }

  private write(s: SetupState): void {
    writeFileAtomic(this.statePath, JSON.stringify(s), 0o600);
  }

  /** The plain code on the tmpfs, if one is issued and unspent. */
  plainCode(): string | null {
    try {
      const c = readFileSync(this.plainPath, 'utf8').trim();
      return normaliseCode(c) ? c : null;
    } catch {
      return null;
    }
  }

  /**
   * Make sure an unspent code exists whose plain text is on the tmpfs (after a reboot the old one
   * cannot be shown any more, so it is replaced). Returns the plain code, or null once set up.
   */
  async ensure(now: number, opts: { keepSpent?: boolean } = {}): Promise<string | null> {
    const s = this.read();
    if (s.done) return null;
    const plain = this.plainCode();
    if (s.code && !s.code.spent && plain && (await this.matches(s, plain))) return plain;
    if (s.code?.spent && opts.keepSpent) return null;
    return this.issue(now);
  }

  /** A fresh code; the previous one stops working at once. */
  async issue(now: number): Promise<string> {
    const code = generateCode();
    const salt = randomBytes(16);
    const hash = await hashCode(normaliseCode(code)!, salt);
    const s = this.read();
    this.write({ ...s, code: { salt: salt.toString('base64'), hash: hash.toString('base64'), issuedAt: now, spent: false } });
    writeFileAtomic(this.plainPath, code + '\n', 0o600);
    return code;
  }

  private async matches(s: SetupState, input: string): Promise<boolean> {
    const n = normaliseCode(input);
    if (!n || !s.code) return false;
    const want = Buffer.from(s.code.hash, 'base64');
    const got = await hashCode(n, Buffer.from(s.code.salt, 'base64'));
    return want.length === got.length && timingSafeEqual(want, got);
  }

  /** Check a typed code; the right one is spent at once (single use) and its plain copy removed. */
  async redeem(input: string): Promise<CodeCheck> {
    const s = this.read();
    if (s.done) return 'done';
    if (!normaliseCode(input)) return 'malformed';
    if (!(await this.matches(s, input))) return 'wrong';
    // Re-read after the (async) hash: two browsers with the same code must not both get in.
    const fresh = this.read();
    if (fresh.done) return 'done';
    if (!fresh.code || fresh.code.hash !== s.code!.hash) return 'wrong';
    if (fresh.code.spent) return 'spent';
    this.write({ ...fresh, code: { ...fresh.code, spent: true } });
    rmSync(this.plainPath, { force: true });
    return 'ok';
  }

  markDone(now: number): void {
    this.write({ version: 1, done: true, doneAt: now, code: null });
    rmSync(this.plainPath, { force: true });
  }
}
