import { createHash } from 'node:crypto';
import { AppError } from '../../../common/errors.js';
import { verifyManifestSignature, type TrustedKey } from './keys.js';
import { compareVersions, DELTA_FORMAT, parseManifest, slotImage, type Manifest } from './manifest.js';
import { BLOCK, ByteReader, expectMember, padding } from './tar-stream.js';

export const MANIFEST_MAX = 64 * 1024;

export interface VerifyOptions {
  keys: readonly TrustedKey[];
  /** Debian arch of this device. */
  arch: string;
  /** Version running now: the bundle must be newer. */
  currentVersion: string;
  /** Anti-rollback floor: the highest version ever committed here (a replayed old bundle is refused). */
  floorVersion?: string | null;
  /** The version the fleet said it is sending (MQTT `update` args); a different one is refused. */
  expectedVersion?: string;
  /** Largest payload accepted (the slot size). */
  maxPayloadBytes: number;
  /** Receives the payload as it streams; resolve to apply backpressure. Called only after the signature verified. */
  onPayload?: (chunk: Buffer) => Promise<void> | void;
  /** Bytes of payload seen so far, at most every chunk. */
  onProgress?: (payloadBytes: number, total: number) => void;
  /** After the manifest verified, before any payload byte (e.g. to report `verified-manifest`). */
  onManifest?: (m: Manifest, keyId: string) => Promise<void> | void;
}

export interface VerifiedBundle {
  manifest: Manifest;
  keyId: string;
  bundleBytes: number;
  /** Format 2 only: the casync index, already checked against the signed size and SHA-256. */
  index?: Buffer;
}

/** keyId as the manifest claims it, read before the signature is trusted (used only to pick a key). */
function claimedKeyId(bytes: Buffer): string | undefined {
  try {
    const k = (JSON.parse(bytes.toString('utf8')) as { keyId?: unknown }).keyId;
    return typeof k === 'string' ? k : undefined;
  } catch {
    return undefined;
  }
}

/** The refusals that need only the signed manifest: checked before a payload byte is accepted. */
export function checkManifest(
  m: Manifest,
  opts: Pick<VerifyOptions, 'arch' | 'currentVersion' | 'floorVersion' | 'expectedVersion' | 'maxPayloadBytes'>,
): void {
  if (m.arch !== opts.arch)
    throw new AppError('UPDATE_WRONG_ARCH', `bundle is for ${m.arch}, this device is ${opts.arch}`, { bundle: m.arch, device: opts.arch });
  if (opts.expectedVersion !== undefined && m.version !== opts.expectedVersion) {
    throw new AppError('UPDATE_VERSION_MISMATCH', `bundle is version ${m.version}, the request expected ${opts.expectedVersion}`, {
      bundle: m.version,
      expected: opts.expectedVersion,
    });
  }
  if (compareVersions(m.version, opts.currentVersion) <= 0) {
    throw new AppError('UPDATE_DOWNGRADE', `bundle version ${m.version} is not newer than the running ${opts.currentVersion}`, {
      bundle: m.version,
      running: opts.currentVersion,
    });
  }
  if (opts.floorVersion && compareVersions(m.version, opts.floorVersion) <= 0) {
    throw new AppError('UPDATE_DOWNGRADE', `bundle version ${m.version} is not newer than ${opts.floorVersion}, already committed on this device`, {
      bundle: m.version,
      floor: opts.floorVersion,
    });
  }
  const image = slotImage(m);
  if (image.size > opts.maxPayloadBytes) {
    throw new AppError('UPDATE_TOO_LARGE', `slot image of ${image.size} bytes does not fit the slot (${opts.maxPayloadBytes} bytes)`, {
      size: image.size,
      max: opts.maxPayloadBytes,
    });
  }
}

/**
 * Verify a bundle as it streams: manifest, then its detached Ed25519 signature (checked before any
 * payload byte is passed on, so a wrong-key bundle is refused after its first kilobytes, not after
 * a 300 MB download), then the payload hashed chunk by chunk against the signed size and SHA-256.
 * The caller must treat everything `onPayload` received as untrusted until this resolves.
 */
export async function verifyBundle(source: AsyncIterable<Buffer | Uint8Array | string>, opts: VerifyOptions): Promise<VerifiedBundle> {
  const r = new ByteReader(source);
  try {
    const mh = await expectMember(r, 'manifest.json', MANIFEST_MAX);
    if (!mh || mh.name !== 'manifest.json')
      throw new AppError('UPDATE_MALFORMED', `bundle must start with manifest.json (found ${mh?.name ?? 'end of archive'})`);
    const manifestBytes = await r.exact(mh.size + padding(mh.size));
    if (!manifestBytes) throw new AppError('UPDATE_TRUNCATED', 'bundle ends inside manifest.json');
    const mbytes = Buffer.from(manifestBytes.subarray(0, mh.size));

    const sh = await expectMember(r, 'manifest.sig', BLOCK);
    if (!sh || sh.name !== 'manifest.sig') throw new AppError('UPDATE_UNSIGNED', 'bundle carries no manifest.sig: unsigned bundles are refused');
    const sigBlock = await r.exact(sh.size + padding(sh.size));
    if (!sigBlock) throw new AppError('UPDATE_TRUNCATED', 'bundle ends inside manifest.sig');
    const key = verifyManifestSignature(mbytes, Buffer.from(sigBlock.subarray(0, sh.size)), claimedKeyId(mbytes), opts.keys);

    const manifest = parseManifest(mbytes);
    if (manifest.keyId !== key.keyId) throw new AppError('UPDATE_BAD_SIGNATURE', `manifest names key ${manifest.keyId} but verified with ${key.keyId}`);
    checkManifest(manifest, opts);
    await opts.onManifest?.(manifest, key.keyId);

    if (manifest.format === DELTA_FORMAT) {
      // A delta bundle: the signed index is all it carries; the chunks come from the store later.
      const ih = await expectMember(r, 'index.caibx', manifest.index.size);
      if (!ih || ih.name !== 'index.caibx')
        throw new AppError('UPDATE_MALFORMED', `expected index.caibx after the signature (found ${ih?.name ?? 'end of archive'})`);
      if (ih.size !== manifest.index.size) {
        throw new AppError('UPDATE_CORRUPT', `index.caibx is ${ih.size} bytes, the signed manifest says ${manifest.index.size}`);
      }
      const block = await r.exact(ih.size + padding(ih.size));
      if (!block) throw new AppError('UPDATE_TRUNCATED', 'bundle ends inside index.caibx');
      const index = Buffer.from(block.subarray(0, ih.size));
      const digest = createHash('sha256').update(index).digest('hex');
      if (digest !== manifest.index.sha256) {
        throw new AppError(
          'UPDATE_CORRUPT',
          `index.caibx SHA-256 ${digest.slice(0, 16)}... does not match the signed ${manifest.index.sha256.slice(0, 16)}...`,
        );
      }
      await expectEnd(r);
      return { manifest, keyId: key.keyId, bundleBytes: r.consumed, index };
    }

    const ph = await expectMember(r, 'payload', opts.maxPayloadBytes);
    if (!ph || ph.name !== 'payload') throw new AppError('UPDATE_MALFORMED', `expected payload after the signature (found ${ph?.name ?? 'end of archive'})`);
    if (ph.size !== manifest.payload.size) {
      throw new AppError('UPDATE_CORRUPT', `payload member is ${ph.size} bytes, the signed manifest says ${manifest.payload.size}`);
    }
    const hash = createHash('sha256');
    let seen = 0;
    const got = await r.pipe(ph.size, async (chunk) => {
      hash.update(chunk);
      seen += chunk.length;
      opts.onProgress?.(seen, ph.size);
      await opts.onPayload?.(chunk);
    });
    if (got < ph.size) throw new AppError('UPDATE_TRUNCATED', `bundle ends after ${got} of ${ph.size} payload bytes`, { got, size: ph.size });
    const digest = hash.digest('hex');
    if (digest !== manifest.payload.sha256) {
      throw new AppError('UPDATE_CORRUPT', `payload SHA-256 ${digest.slice(0, 16)}... does not match the signed ${manifest.payload.sha256.slice(0, 16)}...`);
    }
    const pad = await r.exact(padding(ph.size));
    if (!pad) throw new AppError('UPDATE_TRUNCATED', 'bundle ends before the end-of-archive marker');
    await expectEnd(r);
    return { manifest, keyId: key.keyId, bundleBytes: r.consumed };
  } finally {
    await r.close();
  }
}

/** The end-of-archive marker and GNU tar's zero padding to a 10 KiB record; anything else is refused. */
async function expectEnd(r: ByteReader): Promise<void> {
  const end = await r.exact(2 * BLOCK);
  if (!end) throw new AppError('UPDATE_TRUNCATED', 'bundle ends before the end-of-archive marker');
  if (!end.every((x) => x === 0)) throw new AppError('UPDATE_MALFORMED', 'unexpected member after the last one');
  for (;;) {
    const more = await r.exact(BLOCK);
    if (!more) break;
    if (!more.every((x) => x === 0)) throw new AppError('UPDATE_MALFORMED', 'unexpected data after the end of the archive');
  }
}
