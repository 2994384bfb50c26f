import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { AppError } from '../../../common/errors.js';

/**
 * The signed half of an update bundle (docs/updates.md). The Ed25519 signature covers the exact
 * bytes of manifest.json, and the manifest pins the payload by size and SHA-256, so one signature
 * covers the whole bundle while the payload can be checked as it streams past.
 *
 * Format 1 carries the whole slot image (`payload`). Format 2 is a delta: the bundle carries only a
 * casync blob index (`index.caibx`, pinned by size and SHA-256) and the manifest pins the whole slot
 * image the index rebuilds (`image`: size and SHA-256). The chunks come from a chunk store published
 * beside the bundle (`store`), or from the running slot when it already has them. Agents from before
 * format 2 refuse it as malformed, which is why the full bundle is always published too.
 */
export const BUNDLE_FORMAT = 1;
export const DELTA_FORMAT = 2;

export const SEMVER = '^(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$';
const SHA256 = '^[0-9a-f]{64}$';

const common = {
  product: Type.Literal('surgery-edge'),
  kind: Type.Literal('rootfs', { description: 'A whole read-only root filesystem image (squashfs) for one A/B slot' }),
  version: Type.String({ pattern: SEMVER, description: 'Version of the agent/image inside; must be newer than the running one' }),
  arch: Type.Union([Type.Literal('amd64'), Type.Literal('arm64')]),
  createdAt: Type.String({ maxLength: 40 }),
  keyId: Type.String({ pattern: '^[0-9a-f]{16}$', description: 'First 16 hex digits of SHA-256 over the public key (SPKI DER)' }),
  notes: Type.Optional(Type.String({ maxLength: 2000 })),
};

export const FullManifestSchema = Type.Object(
  {
    format: Type.Literal(BUNDLE_FORMAT),
    ...common,
    payload: Type.Object(
      {
        name: Type.Literal('payload'),
        size: Type.Integer({ minimum: 1 }),
        sha256: Type.String({ pattern: SHA256 }),
        fsType: Type.Literal('squashfs'),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export const DeltaManifestSchema = Type.Object(
  {
    format: Type.Literal(DELTA_FORMAT),
    ...common,
    index: Type.Object(
      {
        name: Type.Literal('index.caibx'),
        size: Type.Integer({ minimum: 1, maximum: 64 * 1024 * 1024 }),
        sha256: Type.String({ pattern: SHA256 }),
      },
      { additionalProperties: false },
    ),
    image: Type.Object(
      {
        size: Type.Integer({ minimum: 1 }),
        sha256: Type.String({ pattern: SHA256, description: 'SHA-256 of the whole slot image the index rebuilds: checked before the slot is armed' }),
        fsType: Type.Literal('squashfs'),
      },
      { additionalProperties: false },
    ),
    store: Type.String({
      pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\\.castr$',
      description: 'Chunk store directory, beside the bundle (same URL directory or same folder)',
    }),
  },
  { additionalProperties: false },
);

export const ManifestSchema = Type.Union([FullManifestSchema, DeltaManifestSchema]);
export type FullManifest = Static<typeof FullManifestSchema>;
export type DeltaManifest = Static<typeof DeltaManifestSchema>;
export type Manifest = FullManifest | DeltaManifest;

/** Size and SHA-256 of the slot image a manifest installs, whichever format it is. */
export function slotImage(m: Manifest): { size: number; sha256: string } {
  return m.format === DELTA_FORMAT ? m.image : m.payload;
}

/** Parse manifest bytes; every problem becomes UPDATE_MALFORMED (the signature was already checked). */
export function parseManifest(bytes: Buffer): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new AppError('UPDATE_MALFORMED', 'manifest.json is not JSON');
  }
  const format = (raw as { format?: unknown } | null)?.format;
  if (format !== BUNDLE_FORMAT && format !== DELTA_FORMAT) {
    throw new AppError('UPDATE_MALFORMED', `manifest.json has bundle format ${JSON.stringify(format)}; this agent reads formats 1 (full) and 2 (delta)`);
  }
  const schema = format === DELTA_FORMAT ? DeltaManifestSchema : FullManifestSchema;
  const problems = [...Value.Errors(schema, raw)].slice(0, 10).map((e) => `${e.path || '/'}: ${e.message}`);
  if (problems.length) throw new AppError('UPDATE_MALFORMED', `manifest.json is invalid: ${problems.join('; ')}`, { problems });
  return raw as Manifest;
}

const parts = (v: string): { nums: number[]; pre: string | null } => {
  const m = new RegExp(SEMVER).exec(v);
  if (!m) throw new AppError('BAD_REQUEST', `not a version: ${JSON.stringify(v)}`);
  return { nums: [Number(m[1]), Number(m[2]), Number(m[3])], pre: m[4] ? m[4].slice(1) : null };
};

/** SemVer precedence (without build metadata): -1, 0 or 1. A pre-release sorts before its release. */
export function compareVersions(a: string, b: string): number {
  const x = parts(a);
  const y = parts(b);
  for (let i = 0; i < 3; i++) if (x.nums[i] !== y.nums[i]) return x.nums[i]! < y.nums[i]! ? -1 : 1;
  if (x.pre === y.pre) return 0;
  if (x.pre === null) return 1;
  if (y.pre === null) return -1;
  const xs = x.pre.split('.');
  const ys = y.pre.split('.');
  for (let i = 0; i < Math.max(xs.length, ys.length); i++) {
    const p = xs[i];
    const q = ys[i];
    if (p === undefined) return -1;
    if (q === undefined) return 1;
    if (p === q) continue;
    const pn = /^[0-9]+$/.test(p);
    const qn = /^[0-9]+$/.test(q);
    if (pn && qn) return Number(p) < Number(q) ? -1 : 1;
    if (pn !== qn) return pn ? -1 : 1;
    return p < q ? -1 : 1;
  }
  return 0;
}

export function isVersion(v: string): boolean {
  return new RegExp(SEMVER).test(v);
}

/** The Debian architecture name of this process's CPU (what manifests and images use). */
export function hostArch(): 'amd64' | 'arm64' | 'unsupported' {
  return process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : 'unsupported';
}
