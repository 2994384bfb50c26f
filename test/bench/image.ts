/**
 * make bench-update: streaming verification and install of a large bundle, in figures.
 * A bundle with a SIZE_MB (default 512) random payload is made with the real tooling, then
 * (1) verified from the file, and (2) installed into a fixture slot (write + fsync + read-back
 * hash + arm). Peak RSS must stay flat however big the bundle: it is streamed, never held.
 * Prints one JSON line per measurement.
 */
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installBundle } from '../../agent/src/update/installer.js';
import { loadTrustedKeys } from '../../agent/src/update/keys.js';
import { UpdateStateStore } from '../../agent/src/update/state.js';
import { verifyBundle } from '../../agent/src/update/verify.js';
import { hostArch, KEYS_DIR, makeAbRoot, makeBundle, makeKeys, makePayload } from '../helpers/update-fixture.js';
import { FakeRunner } from '../helpers/fake-runner.js';

const sizeMb = Number(process.env.SIZE_MB ?? 512);
const dir = mkdtempSync(join(tmpdir(), 'se-bench-update-'));
const rssMb = () => Math.round(process.memoryUsage().rss / 1e6);

try {
  const keys = makeKeys(dir);
  const baseRss = rssMb();
  const payload = makePayload(dir, sizeMb * 1024 * 1024);
  const bundle = makeBundle({ key: keys.priv, version: '9.0.0', payload, out: join(dir, 'big.seb') });
  const bytes = statSync(bundle).size;
  const ab = makeAbRoot(keys.pub, { dir: join(dir, 'ab'), slotBytes: (sizeMb + 8) * 1024 * 1024 });
  const trusted = loadTrustedKeys(ab.hostPath(KEYS_DIR));

  let peak = rssMb();
  const sample = setInterval(() => (peak = Math.max(peak, rssMb())), 50);
  let t = performance.now();
  await verifyBundle(createReadStream(bundle, { highWaterMark: 1 << 20 }), {
    keys: trusted,
    arch: hostArch(),
    currentVersion: '0.1.0',
    maxPayloadBytes: 1 << 40,
  });
  const verifyS = (performance.now() - t) / 1000;
  const verifyPeak = peak;
  process.stdout.write(
    JSON.stringify({
      bench: 'update-verify',
      bundleBytes: bytes,
      seconds: +verifyS.toFixed(2),
      mbPerS: +(bytes / 1e6 / verifyS).toFixed(0),
      rssBeforeMb: baseRss,
      rssPeakMb: verifyPeak,
    }) + '\n',
  );

  peak = rssMb();
  t = performance.now();
  await installBundle({
    source: async () => createReadStream(bundle, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>,
    from: bundle,
    id: 'bench',
    boot: ab.boot,
    store: new UpdateStateStore(join(dir, 'state')),
    keys: trusted,
    arch: hostArch(),
    currentVersion: '0.1.0',
    commands: new FakeRunner(),
    now: Date.now,
  });
  const installS = (performance.now() - t) / 1000;
  clearInterval(sample);
  process.stdout.write(
    JSON.stringify({
      bench: 'update-install',
      bundleBytes: bytes,
      seconds: +installS.toFixed(2),
      mbPerS: +(bytes / 1e6 / installS).toFixed(0),
      rssPeakMb: peak,
      note: "write + fsync + read-back hash into a file slot on this machine's disk",
    }) + '\n',
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
