import assert from 'node:assert/strict';
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { isAppError } from '../../../common/errors.js';
import { installBundle, type InstallOptions } from '../../../agent/src/update/installer.js';
import { loadTrustedKeys } from '../../../agent/src/update/keys.js';
import { UpdateStateStore } from '../../../agent/src/update/state.js';
import {
  GRUBENV,
  hostArch,
  KEYS_DIR,
  makeAbRoot,
  makeBundle,
  makeKeys,
  makePayload,
  simulateBoot,
  slotBytes,
  slotPath,
  type AbRoot,
  type Keys,
} from '../../helpers/update-fixture.js';
import { FakeRunner } from '../../helpers/fake-runner.js';

let dir: string;
let icb: Keys;
let rogue: Keys;
let payload: Buffer;
let good: string;
let ab: AbRoot;
let store: UpdateStateStore;

const opts = (bundle: string, o: Partial<InstallOptions> = {}): InstallOptions => ({
  source: async () => createReadStream(bundle, { highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>,
  from: bundle,
  id: '01JDV2Q5S8Y3M0B6Z7K2N4R9TA',
  boot: ab.boot,
  store,
  keys: loadTrustedKeys(ab.hostPath(KEYS_DIR)),
  arch: hostArch(),
  currentVersion: '0.1.0',
  commands: new FakeRunner(),
  now: () => 1_795_770_000_000,
  ...o,
});

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'se-inst-'));
  icb = makeKeys(dir, 'icb');
  rogue = makeKeys(dir, 'rogue');
  const p = makePayload(dir, 2 * 1024 * 1024 + 77);
  payload = readFileSync(p);
  good = makeBundle({ key: icb.priv, version: '0.2.0', payload: p, out: join(dir, 'good.seb') });
  makeBundle({ key: rogue.priv, version: '0.2.0', payload: p, out: join(dir, 'rogue.seb') });
});
after(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => {
  ab?.cleanup();
  ab = makeAbRoot(icb.pub, { dir: mkdtempSync(join(dir, 'ab-')) });
  store = new UpdateStateStore(join(ab.dir, 'state'));
});

describe('installer', () => {
  it('writes the payload to the inactive slot, verifies it, arms a boot-once, never touches the active slot', async () => {
    const steps: string[] = [];
    const r = await installBundle(opts(good, { onProgress: (s) => steps.push(s) }));
    assert.equal(r.slot, 'b');
    assert.deepEqual(slotBytes(ab, 'b', payload.length), payload);
    assert.deepEqual(slotBytes(ab, 'a'), ab.imageA);
    assert.deepEqual(ab.boot.state(), { booted: 'a', active: 'a', armed: 'b', trial: false });
    assert.equal(store.read().phase, 'installed');
    assert.equal(store.read().version, '0.2.0');
    assert.deepEqual([...new Set(steps)], ['downloading', 'writing', 'verifying', 'installed']);
    assert.equal(simulateBoot(ab), 'b');
  });

  it('a refused bundle changes nothing: not the slot, not the boot environment, not the state', async () => {
    const envBefore = readFileSync(ab.hostPath(GRUBENV));
    const bBefore = slotBytes(ab, 'b');
    await assert.rejects(installBundle(opts(join(dir, 'rogue.seb'))), (e) => isAppError(e, 'UPDATE_UNTRUSTED_KEY'));
    await assert.rejects(installBundle(opts(good, { currentVersion: '0.2.0' })), (e) => isAppError(e, 'UPDATE_DOWNGRADE'));
    assert.deepEqual(readFileSync(ab.hostPath(GRUBENV)), envBefore);
    assert.deepEqual(slotBytes(ab, 'b'), bBefore);
    assert.equal(store.read().phase, 'idle');
  });

  it('a payload that fails its hash is never armed; the device boots the old slot', async () => {
    const b = Buffer.from(readFileSync(good));
    b[b.length - 20_000]! ^= 0xff;
    await assert.rejects(
      installBundle({
        ...opts(good),
        source: async () =>
          (async function* () {
            yield b;
          })(),
      }),
      (e) => isAppError(e, 'UPDATE_CORRUPT'),
    );
    assert.equal(ab.boot.state().armed, null);
    assert.equal(simulateBoot(ab), 'a');
  });

  it('cancels an armed boot-once before overwriting that slot', async () => {
    await installBundle(opts(good));
    assert.equal(ab.boot.state().armed, 'b');
    let armedWhileWriting: string | null = 'unset';
    await installBundle(
      opts(good, {
        onProgress: (s, done) => {
          if (s === 'writing' && done && armedWhileWriting === 'unset') armedWhileWriting = ab.boot.state().armed;
        },
      }),
    );
    assert.equal(armedWhileWriting, null);
    assert.equal(ab.boot.state().armed, 'b');
  });

  it('refuses to install while a trial slot is running (CONFLICT)', async () => {
    await installBundle(opts(good));
    simulateBoot(ab);
    await assert.rejects(installBundle(opts(good, { currentVersion: '0.1.5' })), (e) => isAppError(e, 'CONFLICT'));
  });

  it('reads the slot back from the medium: a write the medium lost is caught and never armed', async () => {
    // onProgress('verifying') runs after write+fsync, before the read-back: lose a block there.
    await assert.rejects(
      installBundle(
        opts(good, {
          onProgress: (s) => {
            if (s === 'verifying') writeFileSync(ab.hostPath(slotPath('b')), Buffer.alloc(4096), { flag: 'r+' });
          },
        }),
      ),
      (e) => isAppError(e, 'UPDATE_CORRUPT') && /read back/.test(e.message),
    );
    assert.equal(ab.boot.state().armed, null);
    assert.equal(simulateBoot(ab), 'a');
  });
});
