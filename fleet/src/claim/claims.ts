import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppError } from '../../../common/errors.js';
import { claimCommitment, keyFingerprint, normaliseClaimCode } from '../../../common/claim-code.js';
import type { FleetCtx } from '../ctx.js';
import { ClaimStore, type ClaimRow } from './claim-store.js';
import { DEVICE_ID, inspectCsr, PROVISIONAL, reservedIdentity, signDevice } from './csr.js';

const ODS = /^[A-Z0-9]{3,10}$/;
const DAY = 86_400_000;
/** How long a used code is still recognised as "already used" (after that it is simply wrong). */
const REMEMBER_MS = 30 * DAY;

export type ClaimOutcome = { ok: true; deviceId: string; fingerprint: string } | { ok: false; status: number; reason: string };

/** The claim's answer to a box's poll (agent/src/enrolment/claim-client.ts ClaimPoll). */
export type PollAnswer = { http: number; body: Record<string, unknown> };

/**
 * Claiming (docs/install-icb-engineer.md): boxes submit a CSR and a commitment to their one-time
 * code; an icb-admin types the code and picks the practice; the fleet signs the CSR with the ICB CA.
 * Codes are single use (markClaimed is conditional), expire (claim.codeTtlMs), and wrong attempts
 * are limited per address and per code. Every claim attempt is audited.
 */
export class Claims {
  readonly store: ClaimStore;

  constructor(private readonly ctx: FleetCtx) {
    this.store = new ClaimStore(ctx.store.driver);
  }

  private get cfg() {
    return this.ctx.config.claim;
  }

  /** A box asks to be claimed. Refuses reserved names and floods; idempotent for the same key and code. */
  async submit(csr: unknown, commitment: unknown, address: string): Promise<{ requestId: string; expiresAt: number; pollAfterMs: number }> {
    if (typeof commitment !== 'string' || !/^[0-9a-f]{64}$/.test(commitment)) throw new AppError('BAD_REQUEST', 'commitment must be 64 hex characters');
    const info = inspectCsr(csr as string);
    const reserved = reservedIdentity(info.cn);
    if (reserved && !PROVISIONAL.test(info.cn)) throw new AppError('FORBIDDEN', `refused: ${reserved}`);
    const now = this.ctx.clock.now();
    const spki = info.spkiDer.toString('base64');
    const existing = await this.store.pendingByKey(spki);
    if (existing && existing.commitment === commitment && existing.expires_at > now)
      return { requestId: existing.id, expiresAt: existing.expires_at, pollAfterMs: this.cfg.pollAfterMs };
    if ((await this.store.pendingFrom(address, now)) >= this.cfg.maxPendingPerAddress)
      throw new AppError('LOCKED_OUT', `too many boxes waiting from ${address}`);
    const row = {
      id: randomBytes(18).toString('base64url'),
      created_at: now,
      expires_at: now + this.cfg.codeTtlMs,
      address,
      csr_cn: info.cn,
      spki,
      fingerprint: keyFingerprint(info.spkiDer),
      commitment,
    };
    await this.store.insert(row);
    this.ctx.log.info('box waiting to be claimed', { fingerprint: row.fingerprint, address, cn: info.cn });
    return { requestId: row.id, expiresAt: row.expires_at, pollAfterMs: this.cfg.pollAfterMs };
  }

  async poll(requestId: string): Promise<PollAnswer> {
    const r = await this.store.get(requestId);
    const now = this.ctx.clock.now();
    if (!r || r.status === 'superseded') return { http: 404, body: { status: 'unknown' } };
    if (r.status === 'claimed') {
      await this.store.delivered(r.id, now);
      return {
        http: 200,
        body: {
          status: 'claimed',
          deviceId: r.device_id,
          odsCode: r.ods_code,
          practiceName: r.practice_name ?? '',
          certificate: r.certificate,
          caChain: readFileSync(this.cfg.caCertPath, 'utf8'),
          brokers: this.brokers(),
          prefix: this.ctx.config.mqtt.prefix,
        },
      };
    }
    if (r.expires_at <= now) return { http: 410, body: { status: 'expired' } };
    return { http: 200, body: { status: 'pending', expiresAt: r.expires_at } };
  }

  brokers(): string[] {
    if (this.cfg.brokers.length) return this.cfg.brokers;
    return /^mqtts:\/\//.test(this.ctx.config.mqtt.url) ? [this.ctx.config.mqtt.url] : [];
  }

  async waiting(): Promise<ClaimRow[]> {
    const now = this.ctx.clock.now();
    return (await this.store.list('pending', 200)).filter((r) => r.expires_at > now);
  }

  /** The engineer's claim: code + practice (+ optional device id). */
  async claim(input: { code: string; ods: string; practiceName: string; deviceId: string; username: string; address: string }): Promise<ClaimOutcome> {
    const now = this.ctx.clock.now();
    const code = normaliseClaimCode(input.code);
    const codeKey = createHash('sha256')
      .update(code ?? input.code.trim().toUpperCase())
      .digest('hex');
    const counts = await this.store.failures(now - this.cfg.failureWindowMs, input.address, codeKey);
    const minutes = Math.ceil(this.cfg.failureWindowMs / 60_000);
    const refuse = async (status: number, reason: string, countIt = true, deviceId: string | null = null): Promise<ClaimOutcome> => {
      if (countIt) await this.store.fail(now, input.address, codeKey);
      await this.audit(input.username, deviceId, { ods: input.ods, address: input.address }, 'refused', reason);
      return { ok: false, status, reason };
    };
    if (counts.address >= this.cfg.maxFailuresPerAddress)
      return refuse(429, `Too many wrong claim codes from your address: wait ${minutes} minutes and try again.`, false);
    if (counts.code >= this.cfg.maxFailuresPerCode)
      return refuse(429, `This code has been tried too many times: wait ${minutes} minutes, or restart the box for a new code.`, false);
    if (!code) return refuse(400, "That is not a claim code: it is 8 letters and digits, like 7KQ4-M2XD, on the box's status page or its label.");
    const ods = input.ods.trim().toUpperCase();
    if (!ODS.test(ods)) return refuse(400, 'Pick the practice: its ODS code is 3 to 10 letters and digits, like P81001.', false);

    const matches = (await this.store.candidates(now - REMEMBER_MS)).filter((r) => sameCommitment(r, code));
    const live = matches.filter((r) => r.status === 'pending' && r.expires_at > now);
    if (live.length > 1)
      return refuse(
        409,
        'This code matches more than one waiting box. Restart the box you are installing to get a new code, and tell the ICB security team.',
        false,
      );
    const row = live[0];
    if (!row) {
      const used = matches.find((r) => r.status === 'claimed');
      if (used)
        return refuse(
          409,
          `This code was already used on ${new Date(used.claimed_at!).toISOString().slice(0, 16).replace('T', ' ')}Z to claim ${used.device_id}. ` +
            `Codes work once.`,
          true,
          used.device_id,
        );
      if (matches.length) return refuse(410, 'This code has expired. The box shows a new code within a minute: read it again from its status page.');
      return refuse(400, "Wrong code: no box is waiting with this code. Check it on the box's status page (it changes if the box was reset).");
    }

    // Which identity the box gets: the engineer's choice, else its own id (re-claim), else the practice's next.
    const asked = row.csr_cn;
    const foreign = await this.foreignIdentity(asked, ods);
    if (foreign) return refuse(403, foreign, false, asked);
    let deviceId = input.deviceId.trim();
    if (deviceId) {
      const why =
        reservedIdentity(deviceId) ?? (PROVISIONAL.test(deviceId) ? `${deviceId} is a reserved identity` : null) ?? (await this.foreignIdentity(deviceId, ods));
      if (why) return refuse(403, why, false, deviceId);
      if (deviceId !== asked && ((await this.ctx.store.devices.get(deviceId)) || (await this.store.issued(deviceId))))
        return refuse(409, `${deviceId} already exists: leave the device id empty for the next free one.`, false, deviceId);
    } else deviceId = PROVISIONAL.test(asked) ? await this.nextId(ods) : asked;

    let certificate: string;
    try {
      certificate = signDevice({ caCertPath: this.cfg.caCertPath, caKeyPath: this.cfg.caKeyPath, spkiPem: pemOf(row.spki), deviceId, days: this.cfg.certDays });
    } catch (e) {
      this.ctx.log.error('claim signing failed', { message: (e as Error).message });
      return refuse(500, 'The fleet could not sign the certificate; it has been logged.', false, deviceId);
    }
    const practiceName = input.practiceName.trim().slice(0, 120);
    // The broker only lets a device in once it is registered (dynamic security, docs/fleet.md): hand
    // the certificate to the registrar (the embedded broker's watches this folder).
    if (this.cfg.issuedDir) {
      try {
        mkdirSync(this.cfg.issuedDir, { recursive: true });
        const path = join(this.cfg.issuedDir, `${deviceId}.crt`);
        writeFileSync(`${path}.tmp`, certificate); // the registrar lists *.crt only: it never sees half a file
        renameSync(`${path}.tmp`, path);
      } catch (e) {
        this.ctx.log.error('claim: could not hand the certificate to the broker registration', { message: (e as Error).message });
      }
    }
    if (!(await this.store.markClaimed(row.id, now, { by: input.username, deviceId, ods, practiceName, certificate })))
      return refuse(409, 'This code was claimed a moment ago by someone else. Codes work once.', true, deviceId);
    // The practice name typed here names the device on the dashboard from its first message on.
    this.ctx.inventory.claimed(deviceId, ods, practiceName);
    if (await this.ctx.store.devices.get(deviceId))
      await this.ctx.store.devices.place(deviceId, { ...this.ctx.inventory.place(deviceId), practice: ods, practiceName: practiceName || null });
    await this.audit(
      input.username,
      deviceId,
      { ods, fingerprint: row.fingerprint, address: input.address },
      'ok',
      `claimed box ${row.fingerprint} (asked for ${asked}) as ${deviceId}`,
    );
    this.ctx.log.info('box claimed', { deviceId, ods, fingerprint: row.fingerprint, by: input.username });
    return { ok: true, deviceId, fingerprint: row.fingerprint };
  }

  /** A device id that belongs to another practice (existing device, issued claim, or its ODS prefix). */
  private async foreignIdentity(id: string, ods: string): Promise<string | null> {
    if (PROVISIONAL.test(id)) return null;
    const reserved = reservedIdentity(id);
    if (reserved) return `Refused: the box asks to be ${reserved}.`;
    const existing = (await this.ctx.store.devices.get(id))?.practice ?? (await this.store.issued(id))?.ods_code ?? null;
    // A name in the <ODS>-<nn> convention names its practice even before that device exists.
    const owner = existing ?? (/^[A-Z0-9]{3,10}-[0-9]+$/.test(id) ? this.ctx.inventory.place(id).practice : null);
    if (owner !== null && owner !== ods) return `Refused: ${id} belongs to practice ${owner}, not ${ods}.`;
    return null;
  }

  private async nextId(ods: string): Promise<string> {
    for (let n = 1; n < 1000; n++) {
      const id = `${ods}-${String(n).padStart(2, '0')}`;
      if (!(await this.ctx.store.devices.get(id)) && !(await this.store.issued(id))) return id;
    }
    throw new AppError('CONFLICT', `no free device id for ${ods}`);
  }

  private async audit(username: string, deviceId: string | null, args: Record<string, unknown>, outcome: string, detail: string): Promise<void> {
    await this.ctx.store.accounts.audit({
      at: this.ctx.clock.now(),
      username,
      device_id: deviceId && DEVICE_ID.test(deviceId) ? deviceId : null,
      action: 'claim',
      args: JSON.stringify(args),
      outcome,
      detail,
    });
  }
}

function sameCommitment(r: ClaimRow, code: string): boolean {
  const want = Buffer.from(claimCommitment(code, Buffer.from(r.spki, 'base64')), 'hex');
  const have = Buffer.from(r.commitment, 'hex');
  return have.length === want.length && timingSafeEqual(have, want);
}

function pemOf(spkiB64: string): string {
  return `-----BEGIN PUBLIC KEY-----\n${spkiB64.match(/.{1,64}/g)!.join('\n')}\n-----END PUBLIC KEY-----\n`;
}
