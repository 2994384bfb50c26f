/**
 * make bench-update-delta [DELTA_FROM=old.root.sqfs] [DELTA_TO=new.root.sqfs]: full vs delta update
 * in figures, with the real tools. DELTA_FROM defaults to the slot image `make image` built; without
 * DELTA_TO the bench makes an agent-only change of it (unsquashfs, a changed agent bundle and
 * package.json version, repacked by image/mkroot-sqfs.sh exactly as make image packs a root).
 * Both bundles are made by image/bundle/make-bundle.sh; the delta one is installed by the agent's
 * installer into a fixture slot b, seeded by slot a = DELTA_FROM, over HTTP from a loopback server
 * that counts every byte it sends (what a box on 4G would download). Prints one JSON line.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { installBundle } from '../../agent/src/update/installer.js';
import { loadTrustedKeys } from '../../agent/src/update/keys.js';
import { UpdateStateStore } from '../../agent/src/update/state.js';
import { FakeRunner } from '../helpers/fake-runner.js';
import { hostArch, KEYS_DIR, makeAbRoot, makeBundle, makeKeys, REPO, slotPath } from '../helpers/update-fixture.js';

const arch = hostArch();
const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const from = resolve(process.env.DELTA_FROM || join(REPO, 'out/image', `surgery-edge-${version}-${arch}.root.sqfs`));
if (!existsSync(from)) {
  process.stderr.write(`bench-update-delta: no ${from}: run make image first, or pass DELTA_FROM=old.root.sqfs\n`);
  process.exit(2);
}
const SLOT = 1024 * 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'se-bench-delta-'));
const secs = (t: number) => +((performance.now() - t) / 1000).toFixed(1);

/** An agent-only release: the same root with a rebuilt agent (one more line in its bundle) and a new version. */
function agentOnlyChange(): string {
  const tree = join(dir, 'tree');
  execFileSync('unsquashfs', ['-q', '-n', '-d', tree, from], { stdio: 'pipe' });
  const app = join(tree, 'opt/surgery-edge');
  const pj = join(app, 'package.json');
  const pkg = JSON.parse(readFileSync(pj, 'utf8')) as Record<string, unknown>;
  writeFileSync(pj, JSON.stringify({ ...pkg, version: '99.0.0' }, null, 2) + '\n');
  appendFileSync(join(app, 'dist/surgery-edge.mjs'), `\n// bench-update-delta: an agent-only change ${new Date().toISOString()}\n`);
  const out = join(dir, 'to.root.sqfs');
  execFileSync(join(REPO, 'image/mkroot-sqfs.sh'), [tree, out], { stdio: 'pipe' });
  rmSync(tree, { recursive: true, force: true });
  return out;
}

try {
  const keys = makeKeys(dir);
  let t = performance.now();
  const to = process.env.DELTA_TO ? resolve(process.env.DELTA_TO) : agentOnlyChange();
  const prepareS = secs(t);
  const rel = join(dir, 'release');
  mkdirSync(rel);
  t = performance.now();
  const full = makeBundle({ key: keys.priv, version: '99.0.0', payload: to, out: join(rel, 'full.seb') });
  const fullS = secs(t);
  t = performance.now();
  execFileSync(
    join(REPO, 'image/bundle/make-bundle.sh'),
    [
      '--key',
      keys.priv,
      '--version',
      '99.0.0',
      '--arch',
      arch,
      '--payload',
      to,
      '--out',
      join(rel, 'next.delta.seb'),
      '--delta-store',
      join(rel, `surgery-edge-${arch}.castr`),
    ],
    { stdio: 'pipe' },
  );
  const deltaMakeS = secs(t);

  const served = { bytes: 0, requests: 0 };
  const server = createServer((req, res) => {
    const p = resolve(rel, '.' + decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    if (!p.startsWith(rel + '/') || !existsSync(p) || !statSync(p).isFile()) return void res.writeHead(404).end();
    const body = readFileSync(p);
    served.bytes += body.length;
    served.requests++;
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/next.delta.seb`;

  // Slot a holds DELTA_FROM (the running image), slot b whatever was there: both 1 GiB like the image's.
  const ab = makeAbRoot(keys.pub, { dir: join(dir, 'ab'), slotBytes: 1024 * 1024 });
  writeFileSync(ab.hostPath(slotPath('a')), readFileSync(from));
  truncateSync(ab.hostPath(slotPath('a')), SLOT);
  truncateSync(ab.hostPath(slotPath('b')), SLOT);
  t = performance.now();
  const r = await installBundle({
    source: async () => {
      const { openSource } = await import('../../agent/src/update/download.js');
      return openSource(url, { idleTimeoutMs: 60_000, maxBytes: 2 ** 40 });
    },
    from: url,
    id: 'bench',
    boot: ab.boot,
    store: new UpdateStateStore(join(dir, 'state')),
    keys: loadTrustedKeys(ab.hostPath(KEYS_DIR)),
    arch,
    currentVersion: '0.0.1',
    commands: new FakeRunner(),
    now: Date.now,
    fetch: { idleTimeoutMs: 60_000, maxBytes: 2 ** 40 },
  });
  const installS = secs(t);
  server.closeAllConnections();
  server.close();
  const fullBytes = statSync(full).size;
  process.stdout.write(
    JSON.stringify({
      bench: 'update-delta',
      from,
      to: process.env.DELTA_TO ? to : 'agent-only change of DELTA_FROM (bench-made)',
      fromImageBytes: statSync(from).size,
      toImageBytes: statSync(to).size,
      fullBundleBytes: fullBytes,
      deltaDownloadBytes: served.bytes,
      deltaRequests: served.requests,
      deltaChunksFetched: r.delta?.chunks,
      deltaPercentOfFull: +((100 * served.bytes) / fullBytes).toFixed(2),
      storeChunks: Number(
        execFileSync('sh', ['-c', `find "${join(rel, `surgery-edge-${arch}.castr`)}" -name '*.cacnk' | wc -l`])
          .toString()
          .trim(),
      ),
      seconds: { prepare: prepareS, makeFullBundle: fullS, makeDeltaBundle: deltaMakeS, deltaInstall: installS },
      armed: ab.boot.state().armed,
      load: readFileSync('/proc/loadavg', 'utf8').trim(),
    }) + '\n',
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
