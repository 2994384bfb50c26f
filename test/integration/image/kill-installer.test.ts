import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { GRUBENV_SIZE } from '../../../agent/src/platform/grubenv.js';
import { CRASH_POINTS, DELTA_ONLY_CRASH_POINTS, type CrashPoint } from '../../../agent/src/update/crash-points.js';
import { UpdateStateStore } from '../../../agent/src/update/state.js';
import {
  abConfig,
  GRUBENV,
  makeAbRoot,
  makeBundle,
  makeKeys,
  makePayload,
  REPO,
  simulateBoot,
  slotBytes,
  type AbRoot,
  type Keys,
} from '../../helpers/update-fixture.js';

/**
 * Power cut at every step of an install, process-level: the installer (`surgery-edge update
 * install`, the same code the agent runs) is SIGKILLed at each named crash point and at random
 * moments; then the fixture "reboots" through GRUB's slot logic and we check that what boots is
 * either the untouched old slot or the complete new one, that the boot environment and the state
 * file are whole, and that the device can still be updated.
 */
const SLOT = 16 * 1024 * 1024;
let dir: string;
let icb: Keys;
let payload: Buffer;
let bundle: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'se-kill-'));
  icb = makeKeys(dir);
  const p = makePayload(dir, 8 * 1024 * 1024 + 321);
  payload = readFileSync(p);
  bundle = makeBundle({ key: icb.priv, version: '0.2.0', payload: p, out: join(dir, 'b.seb') });
});
after(() => rmSync(dir, { recursive: true, force: true }));

function install(ab: AbRoot, env: Record<string, string>, killAfterMs?: number): Promise<{ code: number | null; signal: string | null; out: string }> {
  const cfg = join(ab.dir, 'config.yaml');
  writeFileSync(cfg, stringify({ ...abConfig(ab), log: { level: 'silent' } }));
  const child = spawn(join(REPO, 'agent/bin/surgery-edge'), ['update', 'install', bundle, '--version', '0.2.0', '--config', cfg], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
    // Random-moment kills start counting once the installer has started writing.
    if (killAfterMs !== undefined && out.includes('"writing"')) {
      const t = killAfterMs;
      killAfterMs = undefined;
      setTimeout(() => child.kill('SIGKILL'), t);
    }
  });
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, out })));
}

/** After the cut: GRUB picks a slot; it must hold a whole image, and every record must be readable. */
function checkBootable(ab: AbRoot, why: string): 'a' | 'b' {
  assert.equal(readFileSync(ab.hostPath(GRUBENV)).length, GRUBENV_SIZE, `${why}: grubenv intact`);
  const slot = simulateBoot(ab);
  if (slot === 'a') assert.ok(slotBytes(ab, 'a').equals(ab.imageA), `${why}: slot a untouched`);
  else assert.ok(slotBytes(ab, 'b', payload.length).equals(payload), `${why}: GRUB tries slot b only when it is complete`);
  const s = new UpdateStateStore(join(ab.dir, 'state')).read();
  assert.ok(typeof s.phase === 'string', `${why}: state file readable`);
  return slot;
}

describe('power cut during an install (installer SIGKILLed)', () => {
  for (const point of CRASH_POINTS.filter((p) => !DELTA_ONLY_CRASH_POINTS.includes(p))) {
    it(`at ${point}: the device boots a whole slot and can still be updated`, async () => {
      const ab = makeAbRoot(icb.pub, { dir: mkdtempSync(join(dir, 'ab-')), slotBytes: SLOT });
      try {
        const r = await install(ab, { SURGERY_EDGE_CRASH_AT: point });
        assert.equal(r.signal, 'SIGKILL', `installer reached ${point} and died there (output: ${r.out.slice(-300)})`);
        const slot = checkBootable(ab, point);
        const expected: Partial<Record<CrashPoint, 'b'>> = { armed: 'b', 'installed-recorded': 'b' };
        assert.equal(slot, expected[point] ?? 'a', `after a cut at ${point}`);
        if (slot === 'a') {
          // Back on the old slot: a fresh install goes through.
          const again = await install(ab, {});
          assert.equal(again.code, 0, again.out);
          assert.equal(checkBootable(ab, `${point} then reinstall`), 'b');
        }
      } finally {
        ab.cleanup();
      }
    });
  }

  it('re-installing over an armed slot: a cut mid-write boots the old slot, not the half-written armed one', async () => {
    const ab = makeAbRoot(icb.pub, { dir: mkdtempSync(join(dir, 'ab-')), slotBytes: SLOT });
    try {
      assert.equal((await install(ab, {})).code, 0);
      assert.equal(ab.boot.state().armed, 'b');
      const r = await install(ab, { SURGERY_EDGE_CRASH_AT: 'write-half' });
      assert.equal(r.signal, 'SIGKILL');
      assert.equal(checkBootable(ab, 'cut re-install'), 'a');
    } finally {
      ab.cleanup();
    }
  });
});
