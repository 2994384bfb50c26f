import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { shredFile } from '../core/fs.js';
import { AppError } from '../../../common/errors.js';
import type { CommandRunner } from './command.js';

/**
 * Every TPM 2.0 access of the agent goes through this file (tpm2-tools 5.x): the records data key's
 * sealed copy (records/records.ts) and the device's MQTT client key (platform/device-key.ts, used
 * by enrolment and telemetry).
 *
 * Records: an optional second copy of the records data key, sealed to the device's TPM 2.0 under a PCR policy
 * (tpm2-tools 5.x). When the appliance boots its own unmodified software chain, the PCRs match and
 * the agent unseals the key without a person; a card moved to another machine, or a changed boot
 * chain, fails the policy and the cache stays locked until the passphrase (the recovery path) is
 * entered. The sealed blobs (`records.tpm.pub/.priv`) are useless without this TPM.
 *
 * The key travels to/from tpm2_create/tpm2_unseal as hex on stdin/stdout, never through a file.
 * Transient objects are flushed first: with /dev/tpmrm0 the kernel's resource manager does it, on a
 * raw TPM or the swtpm simulator used in tests it must be explicit.
 */
export const DEFAULT_PCRS = 'sha256:0,2,4,7';

/** The kernel's TPM resource manager: the TCTI used when config leaves `tpmTcti` empty. */
export const DEFAULT_TCTI = 'device:/dev/tpmrm0';

/** Whether a TPM 2.0 resource manager is present. */
export function tpmPresent(hostPath: (p: string) => string): boolean {
  return existsSync(hostPath('/dev/tpmrm0'));
}

/** A TPM is usable when config names one (tests: swtpm) or the device node exists. */
export function tpmAvailable(tcti: string, hostPath: (p: string) => string): boolean {
  return tcti !== '' || tpmPresent(hostPath);
}

export interface TpmOptions {
  runner: CommandRunner;
  /** Where the sealed blobs live (state dir, persistent). */
  blobDir: string;
  /** Scratch dir for object contexts (run dir, tmpfs). */
  workDir: string;
  /** PCR selection of the policy; '' seals to this TPM alone, with no boot-chain policy. */
  pcrs?: string;
  /** Blob file stem: <blobDir>/<name>.pub/.priv (default "records.tpm"). */
  name?: string;
  /** TPM2TOOLS_TCTI, e.g. "device:/dev/tpmrm0" or "swtpm:host=127.0.0.1,port=2321" (tests). */
  tcti?: string;
  timeoutMs?: number;
}

function fsyncFile(p: string): void {
  const fd = openSync(p, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export class TpmSealer {
  constructor(private readonly o: TpmOptions) {}

  get pubPath(): string {
    return join(this.o.blobDir, `${this.o.name ?? 'records.tpm'}.pub`);
  }
  get privPath(): string {
    return join(this.o.blobDir, `${this.o.name ?? 'records.tpm'}.priv`);
  }

  private get pcrs(): string {
    return this.o.pcrs ?? DEFAULT_PCRS;
  }

  isSealed(): boolean {
    return existsSync(this.pubPath) && existsSync(this.privPath);
  }

  private run(cmd: string, args: string[], input?: string) {
    return this.o.runner.run(cmd, args, {
      timeoutMs: this.o.timeoutMs ?? 30_000,
      ...(input !== undefined ? { input } : {}),
      ...(this.o.tcti ? { env: { TPM2TOOLS_TCTI: this.o.tcti } } : {}),
    });
  }

  private async primary(): Promise<string> {
    mkdirSync(this.o.workDir, { recursive: true, mode: 0o700 });
    await this.flush();
    const ctx = join(this.o.workDir, 'tpm-primary.ctx');
    await this.run('tpm2_createprimary', ['-Q', '-C', 'o', '-g', 'sha256', '-G', 'ecc', '-c', ctx]);
    return ctx;
  }

  /** Seal `key` to the current PCR values (replacing any earlier sealed copy). */
  async seal(key: Buffer): Promise<void> {
    const pcrs = this.pcrs;
    const primary = await this.primary();
    const pcrFile = join(this.o.workDir, 'tpm-pcr.bin');
    const policy = join(this.o.workDir, 'tpm-policy.digest');
    try {
      const policyArgs: string[] = [];
      if (pcrs) {
        await this.run('tpm2_pcrread', ['-Q', '-o', pcrFile, pcrs]);
        await this.run('tpm2_createpolicy', ['-Q', '--policy-pcr', '-l', pcrs, '-f', pcrFile, '-L', policy]);
        policyArgs.push('-L', policy);
      }
      mkdirSync(this.o.blobDir, { recursive: true });
      // Written beside the final names and renamed: a power cut never leaves a half pair.
      const tmpPub = `${this.pubPath}.tmp`;
      const tmpPriv = `${this.privPath}.tmp`;
      await this.run('tpm2_create', ['-Q', '-C', primary, ...policyArgs, '-i', '-', '-u', tmpPub, '-r', tmpPriv], key.toString('hex'));
      fsyncFile(tmpPub);
      fsyncFile(tmpPriv);
      renameSync(tmpPriv, this.privPath);
      renameSync(tmpPub, this.pubPath);
    } finally {
      for (const f of [pcrFile, policy, primary]) rmSync(f, { force: true });
    }
  }

  /** Unseal the key; UNAUTHORIZED when the PCR policy fails (changed boot chain, other TPM). */
  async unseal(): Promise<Buffer> {
    if (!this.isSealed()) throw new AppError('NOT_FOUND', 'no TPM-sealed records key');
    const primary = await this.primary();
    const obj = join(this.o.workDir, 'tpm-sealed.ctx');
    try {
      await this.run('tpm2_load', ['-Q', '-C', primary, '-u', this.pubPath, '-r', this.privPath, '-c', obj]);
      // Saved contexts stay valid after a flush; a raw TPM has only ~3 transient slots.
      await this.flush();
      const r = await this.o.runner.run('tpm2_unseal', ['-c', obj, ...(this.pcrs ? ['-p', `pcr:${this.pcrs}`] : [])], {
        timeoutMs: this.o.timeoutMs ?? 30_000,
        allowFailure: true,
        ...(this.o.tcti ? { env: { TPM2TOOLS_TCTI: this.o.tcti } } : {}),
      });
      if (r.code !== 0) {
        throw new AppError(
          /policy check failed|0x0*99d/i.test(r.stderr) ? 'UNAUTHORIZED' : 'COMMAND_FAILED',
          `TPM unseal failed: ${r.stderr.trim().replace(/\s+/g, ' ').slice(-300)}`,
        );
      }
      const hex = r.stdout.trim();
      if (!/^[0-9a-f]{64}$/.test(hex)) throw new AppError('INTERNAL', 'TPM returned a malformed key');
      return Buffer.from(hex, 'hex');
    } finally {
      for (const f of [obj, primary]) rmSync(f, { force: true });
      await this.flush().catch(() => undefined);
    }
  }

  private async flush(): Promise<void> {
    await this.o.runner.run('tpm2_flushcontext', ['-t'], { allowFailure: true, ...(this.o.tcti ? { env: { TPM2TOOLS_TCTI: this.o.tcti } } : {}) });
  }

  /** De-provisioning: the sealed copy goes with the wrapped key. */
  destroy(): void {
    shredFile(this.pubPath);
    shredFile(this.privPath);
  }
}
