import { X509Certificate, type KeyObject } from 'node:crypto';
import type { EnrolmentReport } from '../../../contract/reports/index.js';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Config } from '../config/schema.js';
import type { Clock } from '../../../common/clock.js';
import { AppError, describeError } from '../../../common/errors.js';
import { writeFileAtomic } from '../core/fs.js';
import type { Logger } from '../../../common/log.js';
import type { CommandRunner } from '../platform/command.js';
import { ClaimClient } from './claim-client.js';
import { claimCommitment, keyFingerprint, newClaimCode, spkiDer } from '../../../common/claim-code.js';
import { csrFromKey } from './csr.js';
import { createDeviceKey, keyPem, loadDeviceKey } from '../platform/device-key.js';
import { checkIdentity, commonName } from './identity.js';

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const DEFAULT_KEY = '/etc/surgery-edge/mqtt/device.key';

/** Persisted at enrolment.claimStatePath (0600): the code must survive a restart, the key is elsewhere. */
interface ClaimState {
  code: string;
  fingerprint: string;
  requestId: string | null;
  expiresAt: number | null;
  createdAt: number;
}

export interface ClaimerDeps {
  config: Config;
  hostPath: (p: string) => string;
  runner: CommandRunner;
  clock: Clock;
  log: Logger;
  /** Install the practice config (Agent.reconfigure): restarts the capabilities, telemetry on. */
  apply(next: Config): Promise<void>;
}

export type { ClaimPhase } from '../../../contract/reports/index.js';
import type { ClaimPhase } from '../../../contract/reports/index.js';

/**
 * Claiming (docs/image.md, "Claiming"): the box makes its key (TPM-sealed where there is a TPM,
 * device-key.ts) and a CSR, shows a one-time code, and sends the fleet only the CSR and a
 * commitment to the code. An ICB engineer types the code into the fleet's "Waiting to be claimed"
 * view; the fleet signs the CSR and the next poll brings back the certificate, the CA and the
 * broker settings, which are checked against this box's own key before anything is installed.
 */
export class Claimer {
  phase: ClaimPhase = 'preparing';
  lastError: string | null = null;
  private state: ClaimState | null = null;
  private key: KeyObject | null = null;

  constructor(private readonly d: ClaimerDeps) {}

  get code(): string | null {
    return this.state?.code ?? null;
  }

  details(): Pick<EnrolmentReport, 'claimCode' | 'claimUrl' | 'claimState' | 'claimExpiresAt' | 'claimKeyFingerprint' | 'claimError'> {
    const e = this.d.config.enrolment;
    return {
      claimCode: this.state?.code ?? null,
      claimUrl: e.claimUrl,
      claimState: this.phase,
      claimExpiresAt: this.state?.expiresAt ?? null,
      claimKeyFingerprint: this.state?.fingerprint ?? null,
      claimError: this.lastError,
    };
  }

  /** One step: make what is missing, submit, or poll. Never throws; the error is kept for health(). */
  async step(): Promise<void> {
    try {
      await this.stepOrThrow();
      this.lastError = null;
    } catch (err) {
      this.lastError = describeError(err).message;
      this.phase = this.state?.requestId ? 'waiting' : 'error';
      this.d.log.warn('claim step failed', describeError(err));
    }
  }

  private keyFile(): string {
    return this.d.hostPath(this.d.config.telemetry.keyPath || DEFAULT_KEY);
  }

  private statePath(): string {
    return this.d.hostPath(this.d.config.enrolment.claimStatePath);
  }

  private saveState(s: ClaimState): void {
    mkdirSync(dirname(this.statePath()), { recursive: true });
    writeFileAtomic(this.statePath(), JSON.stringify(s) + '\n', 0o600);
    this.state = s;
  }

  private loadState(): ClaimState | null {
    try {
      const s = JSON.parse(readFileSync(this.statePath(), 'utf8')) as ClaimState;
      return typeof s.code === 'string' && typeof s.fingerprint === 'string' ? s : null;
    } catch {
      return null;
    }
  }

  private async ensureKey(): Promise<KeyObject> {
    if (this.key) return this.key;
    const e = this.d.config.enrolment;
    const file = this.keyFile();
    mkdirSync(dirname(file), { recursive: true });
    const opts = { runner: this.d.runner, workDir: this.d.hostPath(this.d.config.paths.runDir), tcti: e.tpmTcti, pcrs: e.tpmPcrs, hostPath: this.d.hostPath };
    await createDeviceKey(file, e.keyProtection, opts);
    this.key = (await loadDeviceKey(file, opts)).key;
    return this.key;
  }

  private client(): ClaimClient {
    const e = this.d.config.enrolment;
    let ca: string;
    try {
      ca = readFileSync(this.d.hostPath(e.claimCaPath), 'utf8');
    } catch {
      throw new AppError('CONFIG_INVALID', `the ICB CA for claiming (${e.claimCaPath}) is missing`);
    }
    return new ClaimClient(e.claimUrl, ca);
  }

  /** The name the CSR asks for: the configured id when this box already has one, else a provisional one. */
  private csrName(fp: string): string {
    const id = this.d.config.site.deviceId;
    return ID_PATTERN.test(id) && id !== 'unenrolled' ? id : `unclaimed-${fp.replace('-', '').toLowerCase()}`;
  }

  private async stepOrThrow(): Promise<void> {
    const key = await this.ensureKey();
    const spki = spkiDer(key);
    const fp = keyFingerprint(spki);
    const now = this.d.clock.now();
    if (!this.state) this.state = this.loadState();
    // A new key (re-made after a reset) or an expired request: a new code, and a new request.
    if (!this.state || this.state.fingerprint !== fp || (this.state.expiresAt !== null && now > this.state.expiresAt)) {
      this.saveState({ code: newClaimCode(), fingerprint: fp, requestId: null, expiresAt: null, createdAt: now });
      this.d.log.info('new claim code', { fingerprint: fp });
    }
    const s = this.state!;
    const client = this.client();
    if (!s.requestId) {
      this.phase = 'submitting';
      const csr = csrFromKey(keyPem(key), this.csrName(fp));
      const r = await client.submit(csr, claimCommitment(s.code, spki));
      this.saveState({ ...s, requestId: r.requestId, expiresAt: r.expiresAt });
      this.phase = 'waiting';
      return;
    }
    this.phase = 'waiting';
    const p = await client.poll(s.requestId);
    if (p.status === 'pending') return;
    if (p.status !== 'claimed') {
      // The fleet forgot it or 24 h passed: show a new code at once rather than one that cannot work.
      this.saveState({ code: newClaimCode(), fingerprint: fp, requestId: null, expiresAt: null, createdAt: now });
      this.d.log.warn('claim request gone on the fleet; new code', { status: p.status });
      return;
    }
    this.phase = 'installing';
    await this.install(p, key);
  }

  private async install(p: Extract<Awaited<ReturnType<ClaimClient['poll']>>, { status: 'claimed' }>, key: KeyObject): Promise<void> {
    const c = this.d.config;
    if (!ID_PATTERN.test(p.deviceId)) throw new AppError('UPSTREAM_ERROR', `fleet issued a bad device id ${JSON.stringify(p.deviceId)}`);
    const t = c.telemetry;
    const caPath = t.caPath || '/etc/surgery-edge/mqtt/ca.crt';
    const certPath = t.certPath || '/etc/surgery-edge/mqtt/device.crt';
    const keyPath = t.keyPath || DEFAULT_KEY;
    // Check the pair in a staging dir first: the certificate must be for this key, by this CA, for this id.
    const stage = this.d.hostPath(join(c.paths.runDir, 'claim-stage'));
    mkdirSync(stage, { recursive: true });
    try {
      writeFileAtomic(join(stage, 'device.crt'), p.certificate, 0o644);
      writeFileAtomic(join(stage, 'ca.crt'), p.caChain, 0o644);
      const check = checkIdentity(
        { deviceId: p.deviceId, certPath: join(stage, 'device.crt'), keyPath: this.keyFile(), caPath: join(stage, 'ca.crt') },
        (x) => x,
        this.d.clock.now(),
        key,
      );
      if (!check.enrolled) throw new AppError('UPSTREAM_ERROR', `refusing the fleet's certificate: ${check.reason}`);
      if (commonName(new X509Certificate(p.certificate).subject) !== p.deviceId)
        throw new AppError('UPSTREAM_ERROR', 'certificate CN is not the issued device id');
    } finally {
      rmSync(stage, { recursive: true, force: true });
    }
    for (const b of p.brokers)
      if (!/^mqtts:\/\/[A-Za-z0-9.-]+(:[0-9]+)?$/.test(b)) throw new AppError('UPSTREAM_ERROR', `fleet sent a broker that is not mqtts://host[:port]: ${b}`);
    mkdirSync(dirname(this.d.hostPath(certPath)), { recursive: true });
    writeFileAtomic(this.d.hostPath(caPath), p.caChain, 0o644);
    writeFileAtomic(this.d.hostPath(certPath), p.certificate, 0o644);
    const next: Config = structuredClone(c);
    next.site = { ...next.site, deviceId: p.deviceId, odsCode: p.odsCode || next.site.odsCode, practiceName: p.practiceName || next.site.practiceName };
    next.telemetry = {
      ...next.telemetry,
      enabled: true,
      brokers: p.brokers.length ? p.brokers : next.telemetry.brokers,
      caPath,
      certPath,
      keyPath,
      ...(p.prefix ? { prefix: p.prefix } : {}),
    };
    this.phase = 'claimed';
    this.d.log.info('claimed by the ICB', { deviceId: p.deviceId, odsCode: p.odsCode });
    // The config last: until it is applied the box keeps running unenrolled, and tries again.
    await this.d.apply(next);
    if (existsSync(this.statePath())) rmSync(this.statePath(), { force: true });
  }
}
