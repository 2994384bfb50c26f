import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { AppError } from '../../../common/errors.js';
import { writeFileAtomic } from '../core/fs.js';
import { GRUBENV_SIZE, parseGrubEnv, renderGrubEnv, type GrubEnv, type Slot } from './grubenv.js';

export type { Slot } from './grubenv.js';

export interface BootState {
  /** The slot the running system came from (kernel command line `surgery_edge.slot=`). */
  booted: Slot;
  /** The committed default slot GRUB boots (`se_active`). */
  active: Slot;
  /** A boot-once armed but not yet consumed by GRUB (`se_try=1`, `se_try_slot`). */
  armed: Slot | null;
  /** Running a slot that is not committed: GRUB consumed the try flag; the next reboot returns to `active`. */
  trial: boolean;
}

/**
 * The A/B slot and bootloader seam. The appliance image uses GRUB with a grubenv on its ext4 boot
 * partition (image/grub/grub.cfg reads it); tests use the same class on a fixture root, so the fake
 * is the real format. Non-A/B installs (the .deb on an existing Debian box) get `NoBootControl`.
 */
export interface BootControl {
  readonly kind: 'grub' | 'none';
  state(): BootState;
  /** Block device (or fixture file) of a slot's root partition. */
  slotDevice(slot: Slot): string;
  /** Bytes a slot can hold. */
  slotSize(slot: Slot): number;
  /** Boot `slot` once on the next boot; GRUB clears the flag before booting it. */
  armTry(slot: Slot): void;
  /** Cancel a boot-once (rollback before GRUB consumed it, or after a failed trial). */
  disarm(): void;
  /** Make `slot` the default from now on (the health gate passed). */
  commit(slot: Slot): void;
}

export interface GrubBootOptions {
  hostPath: (p: string) => string;
  /** grubenv on the boot partition (mounted read-write only for these writes on the appliance). */
  grubenvPath: string;
  /** Slot partitions by GPT partition label (image/build.sh names them). */
  slotDevices: Record<Slot, string>;
  cmdlinePath?: string;
}

export class GrubBootControl implements BootControl {
  readonly kind = 'grub' as const;
  constructor(private readonly o: GrubBootOptions) {}

  private read(): GrubEnv {
    const p = this.o.hostPath(this.o.grubenvPath);
    try {
      return parseGrubEnv(readFileSync(p));
    } catch (e) {
      throw new AppError('UNAVAILABLE', `cannot read the boot environment ${p}: ${(e as Error).message}`);
    }
  }

  private write(env: GrubEnv): void {
    writeFileAtomic(this.o.hostPath(this.o.grubenvPath), renderGrubEnv(env), 0o644);
  }

  bootedSlot(): Slot {
    const cmdline = readFileSync(this.o.hostPath(this.o.cmdlinePath ?? '/proc/cmdline'), 'utf8');
    const m = /(?:^|\s)surgery_edge\.slot=([ab])(?:\s|$)/.exec(cmdline);
    if (!m) throw new AppError('UNAVAILABLE', 'kernel command line names no surgery_edge.slot: not an A/B boot');
    return m[1] as Slot;
  }

  state(): BootState {
    const env = this.read();
    const booted = this.bootedSlot();
    const active: Slot = env.se_active === 'b' ? 'b' : 'a';
    const armed = env.se_try === '1' && (env.se_try_slot === 'a' || env.se_try_slot === 'b') ? env.se_try_slot : null;
    return { booted, active, armed, trial: booted !== active };
  }

  slotDevice(slot: Slot): string {
    return this.o.hostPath(this.o.slotDevices[slot]);
  }

  slotSize(slot: Slot): number {
    const dev = this.slotDevice(slot);
    const st = statSync(dev);
    if (st.isFile()) return st.size;
    // A block device's stat size is 0: ask sysfs (512-byte sectors).
    const sys = `/sys/class/block/${basename(realpathSync(dev))}/size`;
    return Number(readFileSync(sys, 'utf8').trim()) * 512;
  }

  armTry(slot: Slot): void {
    const env = this.read();
    // se_try_slot first, then se_try, in one atomic rewrite: GRUB never sees half of it.
    this.write({ ...env, se_active: env.se_active === 'b' ? 'b' : 'a', se_try_slot: slot, se_try: '1' });
  }

  disarm(): void {
    const env = this.read();
    if (env.se_try === '0' || env.se_try === undefined) return;
    this.write({ ...env, se_try: '0' });
  }

  commit(slot: Slot): void {
    const env = this.read();
    this.write({ ...env, se_active: slot, se_try: '0', se_try_slot: slot });
  }
}

/** Installs without A/B slots: updates come through apt, and the `update` command says so. */
export class NoBootControl implements BootControl {
  readonly kind = 'none' as const;
  private fail(): never {
    throw new AppError('UNAVAILABLE', 'this install has no A/B root slots (not the appliance image): update it with apt');
  }
  state(): BootState {
    return this.fail();
  }
  slotDevice(): string {
    return this.fail();
  }
  slotSize(): number {
    return this.fail();
  }
  armTry(): void {
    this.fail();
  }
  disarm(): void {
    this.fail();
  }
  commit(): void {
    this.fail();
  }
}

/** `auto`: GRUB when this boot came from an A/B slot (its kernel command line says which), else none. */
export function detectBootControl(o: GrubBootOptions & { mode: 'auto' | 'grub' | 'none' }): BootControl {
  if (o.mode === 'none') return new NoBootControl();
  if (o.mode === 'grub') return new GrubBootControl(o);
  try {
    const cmdline = readFileSync(o.hostPath(o.cmdlinePath ?? '/proc/cmdline'), 'utf8');
    if (/(?:^|\s)surgery_edge\.slot=[ab](?:\s|$)/.test(cmdline) && existsSync(o.hostPath(o.grubenvPath))) return new GrubBootControl(o);
  } catch {
    // no /proc/cmdline (not Linux): no A/B
  }
  return new NoBootControl();
}

export { GRUBENV_SIZE };
