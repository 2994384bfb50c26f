import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { GRUBENV_SIZE } from '../../../agent/src/platform/grubenv.js';
import { UpdateStateStore } from '../../../agent/src/update/state.js';
import {
  abConfig,
  GRUBENV,
  hostArch,
  makeAbRoot,
  makeBundle,
  makeKeys,
  REPO,
  sha256,
  simulateBoot,
  slotBytes,
  type AbRoot,
  type Keys,
} from '../../helpers/update-fixture.js';

/**
 * Delta updates (bundle format 2, docs/updates.md) with the real tools: image/bundle/make-bundle.sh
 * (casync make + openssl), the `surgery-edge update install` CLI (the agent's installer) and Debian's
 * casync rebuilding slot b from slot a plus the chunks it lacks. Every refusal must leave nothing
 * armed and slot a booting; every crash point must too, until the verified slot is armed.
 */
const SLOT = 8 * 1024 * 1024;
const IMAGE = 6 * 1024 * 1024 + 300_000;
const skip = (() => {
  try {
    execFileSync('casync', ['--version'], { stdio: 'ignore' });
    return false;
  } catch {
    return 'casync not installed (scripts/packages/image.txt)';
  }
})();

let dir: string;
let icb: Keys;
let rogue: Keys;
/** Slot a's content for every fixture root (the running image). */
let imageA: Buffer;
/** The new image: slot a's first IMAGE bytes with 64 KiB changed in the middle (an "agent-only change"). */
let imageB: Buffer;
let pub: string;
let full: string;
let delta: string;
let store: string;
/** Chunks casync must fetch from the store (the rest are in slot a). */
let needed: string[];

function chunkFiles(storeDir: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const d of readdirSync(storeDir)) for (const f of readdirSync(join(storeDir, d))) m.set(f.replace(/\.cacnk$/, ''), join(storeDir, d, f));
  return m;
}

function makeDelta(out: string, o: { payload: string; key?: string; version?: string; storeName?: string }): string {
  const args = ['--key', o.key ?? icb.priv, '--version', o.version ?? '0.2.0', '--arch', hostArch(), '--payload', o.payload, '--out', out];
  execFileSync(join(REPO, 'image/bundle/make-bundle.sh'), [...args, '--delta-store', join(out, '..', o.storeName ?? `surgery-edge-${hostArch()}.castr`)], {
    stdio: 'pipe',
  });
  return out;
}

/** A copy of the delta bundle and its store in a fresh directory, for tests that damage one of them. */
function copyRelease(name: string): { bundle: string; store: string } {
  const d = join(dir, name);
  mkdirSync(d);
  cpSync(store, join(d, 'surgery-edge-' + hostArch() + '.castr'), { recursive: true });
  cpSync(delta, join(d, 'b.delta.seb'));
  return { bundle: join(d, 'b.delta.seb'), store: join(d, 'surgery-edge-' + hostArch() + '.castr') };
}

/** Unpack a bundle, let `edit` change its members, pack it again in the same order. */
function rewriteBundle(bundle: string, out: string, edit: (d: string) => void): string {
  const d = mkdtempSync(join(dir, 'rw-'));
  execFileSync('tar', ['-xf', bundle, '-C', d]);
  edit(d);
  const members = ['manifest.json', 'manifest.sig', 'index.caibx'].filter((m) => existsSync(join(d, m)));
  execFileSync('tar', ['--format=ustar', '--owner=0', '--group=0', '--numeric-owner', '-C', d, '-cf', out, ...members]);
  cpSync(join(bundle, '..', `surgery-edge-${hostArch()}.castr`), join(out, '..', `surgery-edge-${hostArch()}.castr`), { recursive: true });
  return out;
}

const sign = (d: string, key: string) =>
  execFileSync('openssl', ['pkeyutl', '-sign', '-inkey', key, '-rawin', '-in', join(d, 'manifest.json'), '-out', join(d, 'manifest.sig')]);

function root(): AbRoot {
  const ab = makeAbRoot(pub, { dir: mkdtempSync(join(dir, 'ab-')), slotBytes: SLOT });
  writeFileSync(ab.hostPath('/dev/disk/by-partlabel/se-root-a'), imageA);
  ab.imageA = imageA;
  return ab;
}

function install(ab: AbRoot, bundle: string, env: Record<string, string> = {}): Promise<{ code: number | null; signal: string | null; out: string }> {
  const cfg = join(ab.dir, 'config.yaml');
  writeFileSync(cfg, stringify({ ...abConfig(ab), log: { level: 'silent' } }));
  const child = spawn(join(REPO, 'agent/bin/surgery-edge'), ['update', 'install', bundle, '--version', '0.2.0', '--config', cfg], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, out })));
}

const lastLine = (out: string) => JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, unknown>;

/** A refused install: the given code, nothing armed, GRUB boots the untouched slot a, state says refused. */
function assertRefused(ab: AbRoot, r: { code: number | null; out: string }, code: string, message?: RegExp, phase = 'refused'): void {
  assert.equal(r.code, 1, r.out);
  const res = lastLine(r.out);
  assert.equal(res.code, code, r.out);
  if (message) assert.match(String(res.message), message);
  assert.equal(ab.boot.state().armed, null, 'nothing armed');
  assert.equal(readFileSync(ab.hostPath(GRUBENV)).length, GRUBENV_SIZE);
  assert.equal(simulateBoot(ab), 'a');
  assert.ok(slotBytes(ab, 'a').equals(imageA), 'slot a untouched');
  // Refused before the signature checked out: nothing was recorded (the device never started installing).
  assert.equal(new UpdateStateStore(join(ab.dir, 'state')).read().phase, phase);
}

describe('delta updates (format 2, casync)', { skip }, () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'se-delta-'));
    icb = makeKeys(dir, 'icb');
    rogue = makeKeys(dir, 'rogue');
    pub = icb.pub;
    imageA = randomBytes(SLOT);
    imageB = Buffer.from(imageA.subarray(0, IMAGE));
    randomBytes(64 * 1024).copy(imageB, 3 * 1024 * 1024);
    writeFileSync(join(dir, 'b.sqfs'), imageB);
    writeFileSync(join(dir, 'a.img'), imageA);
    full = makeBundle({ key: icb.priv, version: '0.2.0', payload: join(dir, 'b.sqfs'), out: join(dir, 'b.seb') });
    delta = makeDelta(join(dir, 'b.delta.seb'), { payload: join(dir, 'b.sqfs') });
    store = join(dir, `surgery-edge-${hostArch()}.castr`);
    // What slot a already has, chunked the same way: the chunks not in it are the ones to fetch.
    execFileSync('casync', ['make', `--store=${join(dir, 'seed.castr')}`, join(dir, 'seed.caibx'), join(dir, 'a.img')], { stdio: 'pipe' });
    const seed = chunkFiles(join(dir, 'seed.castr'));
    needed = [...chunkFiles(store).keys()].filter((k) => !seed.has(k));
    assert.ok(needed.length >= 2, `the change needs chunks from the store (${needed.length})`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('installs from a directory: slot b holds the new image, armed; the download is <= 10 % of the full bundle', async () => {
    const ab = root();
    try {
      const r = await install(ab, delta);
      assert.equal(r.code, 0, r.out);
      const res = lastLine(r.out) as { delta: { fetchedBytes: number; bundleBytes: number; chunks: number } };
      const fullBytes = statSync(full).size;
      const deltaBytes = res.delta.fetchedBytes + res.delta.bundleBytes;
      const pct = ((100 * deltaBytes) / fullBytes).toFixed(1);
      process.stdout.write(`# delta ${deltaBytes} B (${res.delta.chunks} chunks + ${res.delta.bundleBytes} B bundle) vs full ${fullBytes} B = ${pct} %\n`);
      assert.ok(deltaBytes <= fullBytes / 10, `delta ${deltaBytes} B is over 10 % of the full bundle's ${fullBytes} B`);
      assert.equal(res.delta.chunks, needed.length, 'fetched exactly the chunks slot a lacks');
      assert.equal(ab.boot.state().armed, 'b');
      assert.equal(simulateBoot(ab), 'b');
      assert.ok(slotBytes(ab, 'b', IMAGE).equals(imageB), 'slot b is the new image');
      assert.equal(sha256(slotBytes(ab, 'b', IMAGE)), sha256(imageB));
      assert.equal(new UpdateStateStore(join(ab.dir, 'state')).read().phase, 'installed');
    } finally {
      ab.cleanup();
    }
  });

  it('installs over HTTP: chunks come through the checking loopback proxy; casync itself gets no network address', async () => {
    const paths: string[] = [];
    const server: Server = createServer((req, res) => {
      paths.push(req.url ?? '');
      const p = join(dir, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
      if (!p.startsWith(dir) || !existsSync(p) || !statSync(p).isFile()) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': statSync(p).size }).end(readFileSync(p));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const ab = root();
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/b.delta.seb`;
      const r = await install(ab, url);
      assert.equal(r.code, 0, r.out);
      assert.ok(slotBytes(ab, 'b', IMAGE).equals(imageB));
      assert.equal(simulateBoot(ab), 'b');
      const chunkGets = paths.filter((p) => p.endsWith('.cacnk'));
      assert.equal(chunkGets.length, needed.length, `fetched ${chunkGets.length} chunks, ${needed.length} needed`);
      assert.ok(
        chunkGets.every((p) => p.startsWith(`/surgery-edge-${hostArch()}.castr/`)),
        'chunks fetched from the store beside the bundle',
      );
    } finally {
      ab.cleanup();
      server.closeAllConnections();
      server.close();
    }
  });

  it('a tampered chunk is refused (UPDATE_CORRUPT) and nothing is armed', async () => {
    const rel = copyRelease('tampered');
    const f = chunkFiles(rel.store).get(needed[0]!)!;
    const b = readFileSync(f);
    b[b.length - 10] = b[b.length - 10]! ^ 0xff;
    writeFileSync(f, b);
    const ab = root();
    try {
      assertRefused(ab, await install(ab, rel.bundle), 'UPDATE_CORRUPT', /chunk/);
    } finally {
      ab.cleanup();
    }
  });

  it('a chunk swapped for another valid chunk is refused (UPDATE_CORRUPT: it holds other data)', async () => {
    const rel = copyRelease('swapped');
    const files = chunkFiles(rel.store);
    const other = [...files.keys()].find((k) => k !== needed[0])!;
    writeFileSync(files.get(needed[0]!)!, readFileSync(files.get(other)!));
    const ab = root();
    try {
      assertRefused(ab, await install(ab, rel.bundle), 'UPDATE_CORRUPT', /holds other data/);
    } finally {
      ab.cleanup();
    }
  });

  it('a missing chunk is refused with UPDATE_CHUNK_MISSING naming it; nothing armed; a later good install works', async () => {
    const rel = copyRelease('missing');
    const f = chunkFiles(rel.store).get(needed.at(-1)!)!;
    renameSync(f, `${f}.gone`);
    const ab = root();
    try {
      assertRefused(ab, await install(ab, rel.bundle), 'UPDATE_CHUNK_MISSING', new RegExp(needed.at(-1)!));
      renameSync(`${f}.gone`, f);
      const again = await install(ab, rel.bundle);
      assert.equal(again.code, 0, again.out);
      assert.equal(simulateBoot(ab), 'b');
      assert.ok(slotBytes(ab, 'b', IMAGE).equals(imageB));
    } finally {
      ab.cleanup();
    }
  });

  it('a tampered index is refused before anything is written to slot b', async () => {
    const bundle = rewriteBundle(delta, join(mkdtempSync(join(dir, 'ti-')), 'b.delta.seb'), (d) => {
      const b = readFileSync(join(d, 'index.caibx'));
      b[b.length - 5] = b[b.length - 5]! ^ 0x01;
      writeFileSync(join(d, 'index.caibx'), b);
    });
    const ab = root();
    try {
      assertRefused(ab, await install(ab, bundle), 'UPDATE_CORRUPT', /index\.caibx SHA-256/);
      assert.ok(slotBytes(ab, 'b').equals(Buffer.alloc(SLOT)), 'slot b not written');
    } finally {
      ab.cleanup();
    }
  });

  it('an unsigned delta bundle is refused (UPDATE_UNSIGNED)', async () => {
    const bundle = rewriteBundle(delta, join(mkdtempSync(join(dir, 'us-')), 'b.delta.seb'), (d) => rmSync(join(d, 'manifest.sig')));
    const ab = root();
    try {
      assertRefused(ab, await install(ab, bundle), 'UPDATE_UNSIGNED', undefined, 'idle');
      assert.ok(slotBytes(ab, 'b').equals(Buffer.alloc(SLOT)), 'slot b not written');
    } finally {
      ab.cleanup();
    }
  });

  it('a delta bundle signed by an untrusted key is refused (UPDATE_UNTRUSTED_KEY)', async () => {
    const d = mkdtempSync(join(dir, 'rogue-'));
    const bundle = makeDelta(join(d, 'b.delta.seb'), { payload: join(dir, 'b.sqfs'), key: rogue.priv });
    const ab = root();
    try {
      assertRefused(ab, await install(ab, bundle), 'UPDATE_UNTRUSTED_KEY', undefined, 'idle');
      assert.ok(slotBytes(ab, 'b').equals(Buffer.alloc(SLOT)), 'slot b not written');
    } finally {
      ab.cleanup();
    }
  });

  it('a signed manifest whose image hash the index does not rebuild: the slot is written but never armed', async () => {
    const bundle = rewriteBundle(delta, join(mkdtempSync(join(dir, 'wh-')), 'b.delta.seb'), (d) => {
      const m = JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8')) as { image: { sha256: string } };
      m.image.sha256 = sha256(Buffer.from('some other image'));
      writeFileSync(join(d, 'manifest.json'), JSON.stringify(m) + '\n');
      sign(d, icb.priv);
    });
    const ab = root();
    try {
      assertRefused(ab, await install(ab, bundle), 'UPDATE_CORRUPT', /rebuilt from the delta.*not armed/);
    } finally {
      ab.cleanup();
    }
  });

  it('a format-2 manifest is refused by the full-bundle path: the signed format decides, not the members', async () => {
    // A delta manifest followed by a whole payload member (a confused or malicious bundle) is refused.
    const d = mkdtempSync(join(dir, 'mix-'));
    execFileSync('tar', ['-xf', delta, '-C', d]);
    cpSync(join(dir, 'b.sqfs'), join(d, 'payload'));
    const mixed = join(d, 'mixed.seb');
    execFileSync('tar', ['--format=ustar', '-C', d, '-cf', mixed, 'manifest.json', 'manifest.sig', 'payload']);
    const ab = root();
    try {
      assertRefused(ab, await install(ab, mixed), 'UPDATE_MALFORMED', /expected index\.caibx/);
    } finally {
      ab.cleanup();
    }
  });

  it('pruning the store (prune-store.sh) keeps what the kept releases need: those install, a dropped one says UPDATE_CHUNK_MISSING', async () => {
    const d = mkdtempSync(join(dir, 'prune-'));
    const st = join(d, `surgery-edge-${hostArch()}.castr`);
    cpSync(store, st, { recursive: true });
    cpSync(delta, join(d, 'b.delta.seb'));
    // A later release C, published into the same store, changing the same region B changed.
    const imageC = Buffer.from(imageB);
    randomBytes(64 * 1024).copy(imageC, 3 * 1024 * 1024);
    writeFileSync(join(d, 'c.sqfs'), imageC);
    makeDelta(join(d, 'c.delta.seb'), { payload: join(d, 'c.sqfs'), version: '0.2.0' });
    const before = chunkFiles(st).size;
    execFileSync(join(REPO, 'image/bundle/prune-store.sh'), [st, join(d, 'c.delta.seb')], { stdio: 'pipe' });
    const after = chunkFiles(st).size;
    assert.ok(after < before, `pruning removed B-only chunks (${before} -> ${after})`);
    const ab = root();
    try {
      const r = await install(ab, join(d, 'c.delta.seb'));
      assert.equal(r.code, 0, r.out);
      assert.ok(slotBytes(ab, 'b', IMAGE).equals(imageC), 'the kept release installs from the pruned store');
    } finally {
      ab.cleanup();
    }
    const ab2 = root();
    try {
      assertRefused(ab2, await install(ab2, join(d, 'b.delta.seb')), 'UPDATE_CHUNK_MISSING', /publish the store again, or send the full bundle/);
    } finally {
      ab2.cleanup();
    }
  });

  for (const point of ['write-started', 'delta-chunk-fetched', 'write-synced', 'readback-done'] as const) {
    it(`power cut at ${point} during a delta install: slot a boots, and the install can be done again`, async () => {
      const ab = root();
      try {
        const r = await install(ab, delta, { SURGERY_EDGE_CRASH_AT: point });
        assert.equal(r.signal, 'SIGKILL', `installer reached ${point} (output: ${r.out.slice(-300)})`);
        assert.equal(readFileSync(ab.hostPath(GRUBENV)).length, GRUBENV_SIZE);
        assert.equal(simulateBoot(ab), 'a', `after a cut at ${point}`);
        assert.ok(slotBytes(ab, 'a').equals(imageA), 'slot a untouched');
        const again = await install(ab, delta);
        assert.equal(again.code, 0, again.out);
        assert.equal(simulateBoot(ab), 'b');
        assert.ok(slotBytes(ab, 'b', IMAGE).equals(imageB));
      } finally {
        ab.cleanup();
      }
    });
  }

  it('power cut just after arming a delta-built slot: GRUB tries the complete new image', async () => {
    const ab = root();
    try {
      const r = await install(ab, delta, { SURGERY_EDGE_CRASH_AT: 'armed' });
      assert.equal(r.signal, 'SIGKILL');
      assert.equal(simulateBoot(ab), 'b');
      assert.ok(slotBytes(ab, 'b', IMAGE).equals(imageB));
    } finally {
      ab.cleanup();
    }
  });
});
