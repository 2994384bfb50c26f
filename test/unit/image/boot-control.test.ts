import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GRUBENV_SIZE, parseGrubEnv, renderGrubEnv } from '../../../agent/src/platform/grubenv.js';
import { compareVersions } from '../../../agent/src/update/manifest.js';
import { GRUBENV, makeAbRoot, makeKeys, simulateBoot, type AbRoot } from '../../helpers/update-fixture.js';
import { grubBoot } from '../../helpers/grub-boot.js';

const hasGrubEditenv = spawnSync('grub-editenv', ['--version']).status === 0;

describe('grubenv format', () => {
  it('renders exactly 1024 bytes that parse back', () => {
    const b = renderGrubEnv({ se_active: 'b', se_try: '1', se_try_slot: 'a' });
    assert.equal(b.length, GRUBENV_SIZE);
    assert.deepEqual(parseGrubEnv(b), { se_active: 'b', se_try: '1', se_try_slot: 'a' });
  });

  it('refuses values that would need GRUB escapes, and a block of the wrong size', () => {
    assert.throws(() => renderGrubEnv({ se_active: 'a\nse_try=1' }));
    assert.throws(() => parseGrubEnv(Buffer.from('# GRUB Environment Block\nse_active=a\n')));
  });

  // Contract with the real tool: what we write grub-editenv reads, and what it writes we read.
  it('agrees with grub-editenv both ways', { skip: hasGrubEditenv ? false : 'grub-editenv not installed (Debian grub-common)' }, () => {
    const d = mkdtempSync(join(tmpdir(), 'se-grubenv-'));
    try {
      const ours = join(d, 'ours');
      writeFileSync(ours, renderGrubEnv({ se_active: 'b', se_try: '0', se_try_slot: 'b' }));
      assert.deepEqual(execFileSync('grub-editenv', [ours, 'list']).toString().trim().split('\n'), ['se_active=b', 'se_try=0', 'se_try_slot=b']);
      const theirs = join(d, 'theirs');
      execFileSync('grub-editenv', [theirs, 'create']);
      execFileSync('grub-editenv', [theirs, 'set', 'se_active=a', 'se_try=1', 'se_try_slot=b']);
      assert.deepEqual(parseGrubEnv(readFileSync(theirs)), { se_active: 'a', se_try: '1', se_try_slot: 'b' });
      assert.deepEqual(readFileSync(theirs), renderGrubEnv({ se_active: 'a', se_try: '1', se_try_slot: 'b' }));
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('GRUB boots the active slot, and a try slot exactly once', () => {
    assert.equal(grubBoot({}).slot, 'a');
    assert.equal(grubBoot({ se_active: 'b' }).slot, 'b');
    const once = grubBoot({ se_active: 'a', se_try: '1', se_try_slot: 'b' });
    assert.equal(once.slot, 'b');
    assert.equal(grubBoot(once.env).slot, 'a');
  });
});

describe('GrubBootControl on a fixture root', () => {
  let dir: string;
  let ab: AbRoot;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'se-bc-'));
    ab = makeAbRoot(makeKeys(dir).pub, { dir });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads booted/active/armed/trial and walks arm -> trial -> commit', () => {
    assert.deepEqual(ab.boot.state(), { booted: 'a', active: 'a', armed: null, trial: false });
    assert.equal(ab.boot.slotSize('b'), readFileSync(ab.hostPath('/dev/disk/by-partlabel/se-root-b')).length);
    ab.boot.armTry('b');
    assert.deepEqual(ab.boot.state(), { booted: 'a', active: 'a', armed: 'b', trial: false });
    assert.equal(simulateBoot(ab), 'b');
    assert.deepEqual(ab.boot.state(), { booted: 'b', active: 'a', armed: null, trial: true });
    ab.boot.commit('b');
    assert.deepEqual(ab.boot.state(), { booted: 'b', active: 'b', armed: null, trial: false });
    assert.equal(simulateBoot(ab), 'b');
  });

  it('a trial that is not committed returns to the committed slot on the next boot', () => {
    ab.boot.armTry('a');
    assert.equal(simulateBoot(ab), 'a');
    assert.equal(ab.boot.state().trial, true);
    assert.equal(simulateBoot(ab), 'b');
    ab.boot.armTry('a');
    ab.boot.disarm();
    assert.equal(simulateBoot(ab), 'b');
    assert.equal(readFileSync(ab.hostPath(GRUBENV)).length, GRUBENV_SIZE);
  });

  it('says plainly when the kernel command line names no slot', () => {
    writeFileSync(ab.hostPath('/proc/cmdline'), 'root=/dev/sda1 ro\n');
    assert.throws(() => ab.boot.state(), /not an A\/B boot/);
  });
});

describe('versions', () => {
  it('orders by SemVer precedence', () => {
    const sorted = ['1.0.0', '0.10.0', '0.2.0', '0.2.0-rc.1', '0.2.0-beta.11', '0.2.0-beta.2', '0.2.0-alpha', '0.1.9'].sort(compareVersions);
    assert.deepEqual(sorted, ['0.1.9', '0.2.0-alpha', '0.2.0-beta.2', '0.2.0-beta.11', '0.2.0-rc.1', '0.2.0', '0.10.0', '1.0.0']);
    assert.throws(() => compareVersions('1.0', '1.0.0'));
  });
});
