import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { AppError } from '../../../common/errors.js';
import type { BootControl } from '../platform/boot-control.js';
import type { CommandRunner } from '../platform/command.js';
import { otherSlot, type Slot } from '../platform/grubenv.js';
import { crashPoint } from './crash-points.js';
import { extractDelta, storeLocation } from './delta.js';
import type { TrustedKey } from './keys.js';
import { DELTA_FORMAT, slotImage, type Manifest } from './manifest.js';
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
  /** How a delta bundle's chunks are fetched: the same CA and limits as the bundle download. */
  fetch?: { ca?: Buffer | undefined; idleTimeoutMs: number; maxBytes: number; signal?: AbortSignal; tmpDir?: string; casync?: string };
}

export interface InstallResult {
  manifest: Manifest;
  slot: Slot;
  /** Delta bundles: chunks fetched from the store (the rest came from the running slot). */
  delta?: { chunks: number; fetchedBytes: number; bundleBytes: number; ms: number };
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
  let index: Buffer | undefined;
  let bundleBytes = 0;
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
        step(m.format === DELTA_FORMAT ? 'writing-delta' : 'writing', 0, slotImage(m).size);
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
    index = r.index;
    bundleBytes = r.bundleBytes;
    await fh.sync();
  } finally {
    await fh.close();
  }
  let delta: InstallResult['delta'];
  if (manifest.format === DELTA_FORMAT) {
    // Format 2: casync rebuilds the image from the signed index, seeded by the running slot (read
    // only), fetching the other chunks through the checking loopback proxy (delta.ts).
    if (!index) throw new AppError('INTERNAL', 'delta bundle verified without its index');
    if (!o.fetch) throw new AppError('UNAVAILABLE', 'this installer was started without a way to fetch chunks: send the full bundle');
    crashPoint('write-started');
    const d = await extractDelta({
      index,
      store: storeLocation(o.from, manifest.store),
      seeds: [o.boot.slotDevice(st.booted)],
      target: device,
      ca: o.fetch.ca,
      idleTimeoutMs: o.fetch.idleTimeoutMs,
      maxBytes: o.fetch.maxBytes,
      tmpDir: o.fetch.tmpDir ?? tmpdir(),
      ...(o.fetch.signal ? { signal: o.fetch.signal } : {}),
      ...(o.fetch.casync ? { casync: o.fetch.casync } : {}),
      onChunk: (n) => {
        if (n === 1) crashPoint('delta-chunk-fetched');
      },
    });
    delta = { ...d, bundleBytes };
    step('delta-fetched', d.fetchedBytes + bundleBytes, slotImage(manifest).size);
    // casync wrote through its own descriptor: flush the slot's dirty pages before reading back.
    const fw = await open(device, 'r+');
    try {
      await fw.sync();
    } finally {
      await fw.close();
    }
  }
  crashPoint('write-synced');

  // Read back from the medium, not the page cache: SD cards and USB sticks can acknowledge writes
  // they lose. blockdev --flushbufs drops the device's cached pages after the sync above.
  step('verifying');
  if (!statSync(device).isFile()) await o.commands.run('blockdev', ['--flushbufs', device], { timeoutMs: 60_000 });
  const image = slotImage(manifest);
  const digest = await hashPrefix(device, image.size);
  if (digest !== image.sha256) {
    throw new AppError(
      'UPDATE_CORRUPT',
      manifest.format === DELTA_FORMAT
        ? `slot ${slot} rebuilt from the delta has SHA-256 ${digest.slice(0, 16)}..., not the signed ${image.sha256.slice(0, 16)}...: not armed`
        : `slot ${slot} read back with SHA-256 ${digest.slice(0, 16)}..., not the written ${image.sha256.slice(0, 16)}...: the medium is failing`,
    );
  }
  crashPoint('readback-done');

  o.boot.armTry(slot);
  crashPoint('armed');
  o.store.update({ phase: 'installed', version: manifest.version, slot }, o.now());
  crashPoint('installed-recorded');
  step('installed');
  return { manifest, slot, ...(delta ? { delta } : {}) };
}

export async function hashPrefix(path: string, bytes: number): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path, { start: 0, end: bytes - 1, highWaterMark: CHUNK })) h.update(c as Buffer);
  return h.digest('hex');
}
