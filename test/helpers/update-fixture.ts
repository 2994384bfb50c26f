import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { GrubBootControl } from '../../agent/src/platform/boot-control.js';
import { parseGrubEnv, renderGrubEnv, type Slot } from '../../agent/src/platform/grubenv.js';
import { makeHostPath } from '../../agent/src/core/fs.js';
import { grubBoot } from './grub-boot.js';

/**
 * A/B fixtures for update tests, built with the real tooling: keys from provisioning/update-key.sh,
 * bundles from image/bundle/make-bundle.sh (openssl + GNU tar), and a fixture root whose grubenv,
 * /proc/cmdline and slot "partitions" (plain files) have the appliance's paths and formats.
 */
export const REPO = resolve(import.meta.dirname, '../..');
const KEY_TOOL = join(REPO, 'provisioning/update-key.sh');
const BUNDLE_TOOL = join(REPO, 'image/bundle/make-bundle.sh');

export const SLOT_BYTES = 4 * 1024 * 1024;
export const GRUBENV = '/boot/ab/grubenv';
export const KEYS_DIR = '/usr/share/surgery-edge/update-keys';
export const slotPath = (s: Slot) => `/dev/disk/by-partlabel/se-root-${s}`;

export interface Keys {
  priv: string;
  pub: string;
}

export function makeKeys(dir: string, name = 'icb'): Keys {
  const d = join(dir, `keys-${name}`);
  execFileSync(KEY_TOOL, ['init', d], { stdio: 'pipe' });
  return { priv: join(d, 'update-key.pem'), pub: join(d, 'update-key.pub.pem') };
}

export function makePayload(dir: string, bytes: number, name = 'payload.sqfs'): string {
  const p = join(dir, name);
  writeFileSync(p, randomBytes(bytes));
  return p;
}

export function makeBundle(o: { key: string; version: string; arch?: string; payload: string; out: string }): string {
  execFileSync(BUNDLE_TOOL, ['--key', o.key, '--version', o.version, '--arch', o.arch ?? hostArch(), '--payload', o.payload, '--out', o.out], {
    stdio: 'pipe',
  });
  return o.out;
}

export function hostArch(): string {
  return process.arch === 'x64' ? 'amd64' : 'arm64';
}

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export interface AbRoot {
  dir: string;
  root: string;
  hostPath: (p: string) => string;
  boot: GrubBootControl;
  /** The original content of slot A (the running, committed image). */
  imageA: Buffer;
  cleanup(): void;
}

/** A device booted from slot A with A committed, B empty, and `trustedPub` installed as the ICB key. */
export function makeAbRoot(trustedPub: string, opts: { dir?: string; slotBytes?: number } = {}): AbRoot {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'se-ab-'));
  const root = join(dir, 'root');
  const hostPath = makeHostPath(root);
  const size = opts.slotBytes ?? SLOT_BYTES;
  const imageA = Buffer.concat([Buffer.from('slot-a-image:'), randomBytes(size - 13)]);
  mkdirSync(dirname(hostPath(slotPath('a'))), { recursive: true });
  writeFileSync(hostPath(slotPath('a')), imageA);
  writeFileSync(hostPath(slotPath('b')), Buffer.alloc(size));
  mkdirSync(dirname(hostPath(GRUBENV)), { recursive: true });
  writeFileSync(hostPath(GRUBENV), renderGrubEnv({ se_active: 'a', se_try: '0' }));
  mkdirSync(hostPath('/proc'), { recursive: true });
  writeFileSync(hostPath('/proc/cmdline'), 'BOOT_IMAGE=/vmlinuz root=PARTLABEL=se-root-a ro surgery_edge.slot=a quiet\n');
  mkdirSync(hostPath(KEYS_DIR), { recursive: true });
  copyFileSync(trustedPub, join(hostPath(KEYS_DIR), 'icb.pem'));
  const boot = new GrubBootControl({ hostPath, grubenvPath: GRUBENV, slotDevices: { a: slotPath('a'), b: slotPath('b') } });
  return { dir, root, hostPath, boot, imageA, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Power-cycle the fixture: GRUB's logic (image/grub/grub.cfg) picks the slot and rewrites grubenv. */
export function simulateBoot(ab: AbRoot): Slot {
  const envPath = ab.hostPath(GRUBENV);
  const r = grubBoot(parseGrubEnv(readFileSync(envPath)));
  writeFileSync(envPath, renderGrubEnv(r.env));
  writeFileSync(ab.hostPath('/proc/cmdline'), `BOOT_IMAGE=/vmlinuz root=PARTLABEL=se-root-${r.slot} ro surgery_edge.slot=${r.slot} quiet\n`);
  return r.slot;
}

export function slotBytes(ab: AbRoot, s: Slot, n?: number): Buffer {
  const b = readFileSync(ab.hostPath(slotPath(s)));
  return n === undefined ? b : b.subarray(0, n);
}

/** Config document for an agent or CLI working on this fixture root. */
export function abConfig(ab: AbRoot, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    paths: { stateDir: join(ab.dir, 'state'), runDir: join(ab.dir, 'run'), root: ab.root },
    update: { bootControl: 'grub', rebootDelayMs: 1000, ...extra },
  };
}
