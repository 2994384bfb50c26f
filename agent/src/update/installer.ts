import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { AppError } from '../../../common/errors.js';
import type { BootControl } from '../platform/boot-control.js';
import type { CommandRunner } from '../platform/command.js';
import { otherSlot, type Slot } from '../platform/grubenv.js';
import { crashPoint } from './crash-points.js';
import type { TrustedKey } from './keys.js';
import type { Manifest } from './manifest.js';
import type { UpdateStateStore } from './state.js';
import { verifyBundle } from './verify.js';

export interface InstallOptions {
  /** The bundle as it arrives (download or file): verified and written in one pass, never staged whole. */
  source: () => Promise<AsyncIterable<Buffer>>;
  /** Where it came from, for the state file and logs. */
  from: string;
  id: string;
  boot: BootControl;
  store: UpdateStateStore;
  keys: readonly TrustedKey[];
  arch: string;
  currentVersion: string;
  expectedVersion?: string;
  commands: CommandRunner;
  now: () => number;
  onProgress?: (step: string, done?: number, total?: number) => void;
}

export interface InstallResult {
  manifest: Manifest;
  slot: Slot;
}

const CHUNK = 1 << 20;

/**
 * Stream a bundle into the inactive slot while verifying it, then arm a boot-once into it.
 * The signature is checked before the first payload byte is written; the payload hash at its end.
 *
 * The order is the power-cut argument (docs/updates.md): the active slot is never written; a
 * boot-once pointing at the target is first cancelled, then the target is written, synced, read
 * back and hashed, and only then armed. Whatever step a power cut interrupts, GRUB boots either the
 * untouched active slot or a target that was completely written and verified.
 */
export async function installBundle(o: InstallOptions): Promise<InstallResult> {
  const step = (s: string, done?: number, total?: number) => o.onProgress?.(s, done, total);
  const st = o.boot.state();
  if (st.trial)
    throw new AppError('CONFLICT', `running slot ${st.booted} on trial (committed slot is ${st.active}): commit or roll back before installing another update`);
  const slot = otherSlot(st.booted);
  const device = o.boot.slotDevice(slot);
  const slotBytes = o.boot.slotSize(slot);
  const prior = o.store.read();
  const verifyOpts = {
    keys: o.keys,
    arch: o.arch,
    currentVersion: o.currentVersion,
    floorVersion: prior.floorVersion,
    maxPayloadBytes: slotBytes,
    ...(o.expectedVersion !== undefined ? { expectedVersion: o.expectedVersion } : {}),
  };
  crashPoint('checked');

  step('downloading');
  const fh = await open(device, 'r+');
  let manifest: Manifest;
  try {
    let pos = 0;
    let half = false;
    const r = await verifyBundle(await o.source(), {
      ...verifyOpts,
      // Only a bundle whose signed manifest passed every check changes anything on the device.
      onManifest: (m) => {
        // Never write under an armed boot-once: a power cut mid-write would make GRUB try a half slot.
        if (st.armed) o.boot.disarm();
        crashPoint('disarmed');
        o.store.update({ phase: 'installing', id: o.id, version: m.version, slot, bundlePath: o.from, error: null, fromVersion: o.currentVersion }, o.now());
        crashPoint('installing-recorded');
        step('writing', 0, m.payload.size);
      },
      onPayload: async (chunk) => {
        if (pos === 0) crashPoint('write-started');
        await fh.write(chunk, 0, chunk.length, pos);
        pos += chunk.length;
      },
      onProgress: (done, total) => {
        if (!half && done * 2 >= total) {
          half = true;
          crashPoint('write-half');
        }
        step('writing', done, total);
      },
    });
    manifest = r.manifest;
    await fh.sync();
  } finally {
    await fh.close();
  }
  crashPoint('write-synced');

  // Read back from the medium, not the page cache: SD cards and USB sticks can acknowledge writes
  // they lose. blockdev --flushbufs drops the device's cached pages after the sync above.
  step('verifying');
  if (!statSync(device).isFile()) await o.commands.run('blockdev', ['--flushbufs', device], { timeoutMs: 60_000 });
  const digest = await hashPrefix(device, manifest.payload.size);
  if (digest !== manifest.payload.sha256) {
    throw new AppError(
      'UPDATE_CORRUPT',
      `slot ${slot} read back with SHA-256 ${digest.slice(0, 16)}..., not the written ${manifest.payload.sha256.slice(0, 16)}...: the medium is failing`,
    );
  }
  crashPoint('readback-done');

  o.boot.armTry(slot);
  crashPoint('armed');
  o.store.update({ phase: 'installed', version: manifest.version, slot }, o.now());
  crashPoint('installed-recorded');
  step('installed');
  return { manifest, slot };
}

export async function hashPrefix(path: string, bytes: number): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path, { start: 0, end: bytes - 1, highWaterMark: CHUNK })) h.update(c as Buffer);
  return h.digest('hex');
}
