import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { makeHostPath } from '../../../agent/src/core/fs.js';
import { cachedClockTrust, CLOCK_FLOOR_MS, clockTrust, TIMESYNC_FLAG } from '../../../agent/src/platform/clock-sync.js';

/** Hazard H7: the appliance clock is trusted only once systemd-timesyncd has synchronised since boot. */
describe('clock-sync: is the system clock trustworthy', () => {
  const root = mkdtempSync(join(tmpdir(), 'clock-sync-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const hostPath = makeHostPath(root);
  const NOW = Date.parse('2026-12-06T09:00:00Z');
  const flag = () => {
    mkdirSync(join(root, 'run/systemd/timesync'), { recursive: true });
    writeFileSync(join(root, TIMESYNC_FLAG), '');
  };

  it('no timesyncd flag file since boot: unconfirmed', () => {
    assert.equal(clockTrust({ hostPath, now: NOW }), 'unconfirmed');
  });

  it('flag present (timesyncd synchronised): synced, read under the host root', () => {
    flag();
    assert.equal(hostPath(TIMESYNC_FLAG), join(root, 'run/systemd/timesync/synchronized'));
    assert.equal(clockTrust({ hostPath, now: NOW }), 'synced');
  });

  it('a time before the floor is wrong even with the flag present (reset clock, 1970)', () => {
    flag();
    assert.equal(clockTrust({ hostPath, now: CLOCK_FLOOR_MS - 1 }), 'wrong');
    assert.equal(clockTrust({ hostPath, now: 0 }), 'wrong');
    assert.equal(clockTrust({ hostPath, now: NaN }), 'wrong');
    assert.equal(clockTrust({ hostPath, now: CLOCK_FLOOR_MS }), 'synced', 'the floor itself is allowed');
    assert.equal(clockTrust({ hostPath, now: NOW, floorMs: NOW + 1 }), 'wrong', 'the floor can be given');
  });

  it('a time before the floor without the flag is wrong, not merely unconfirmed', () => {
    rmSync(join(root, 'run'), { recursive: true, force: true });
    assert.equal(clockTrust({ hostPath, now: Date.parse('2024-01-01T00:00:00Z') }), 'wrong');
  });

  it('cachedClockTrust: the flag is stat-ed at most once per interval, the floor on every call', async () => {
    rmSync(join(root, 'run'), { recursive: true, force: true });
    let now = NOW;
    const trust = cachedClockTrust({ hostPath, now: () => now, everyMs: 200 });
    assert.equal(trust(), 'unconfirmed');
    flag();
    assert.equal(trust(), 'unconfirmed', 'within the interval: the last answer');
    now = 0;
    assert.equal(trust(), 'wrong', 'a clock reset is wrong at once, cache or not');
    now = NOW;
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(trust(), 'synced', 'after the interval: the flag is read again');
  });
});
