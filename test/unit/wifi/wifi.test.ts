import assert from 'node:assert/strict';
import { reported } from '../../helpers/reports.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { WifiCapability } from '../../../agent/src/wifi/wifi.js';
import { createTestCtx, type TestCtx } from '../../helpers/ctx.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { FakeWifi } from '../../helpers/fake-wifi.js';

const SECRET = 'correct-horse-battery-staple';
const POLL = 15_000;

function setup(wifi: Record<string, unknown> = {}) {
  const clock = new FakeClock();
  const radio = new FakeWifi();
  const uplinks = [{ name: 'wifi', interface: 'wlan0', kind: 'wifi', priority: 3, table: 103 }];
  const ctx = createTestCtx({
    clock,
    config: {
      uplinks,
      cellular: { enabled: false },
      wifi: { enabled: true, ssid: 'Surgery-Backup', passphraseFile: '/etc/surgery-edge/wifi.psk', pollIntervalMs: POLL, ...wifi },
    },
  });
  const psk = ctx.platform.hostPath('/etc/surgery-edge/wifi.psk');
  mkdirSync(dirname(psk), { recursive: true });
  writeFileSync(psk, SECRET + '\n', { mode: 0o600 });
  return { clock, radio, ctx, cap: new WifiCapability({ adapter: radio }) };
}

describe('wifi capability', () => {
  let t: ReturnType<typeof setup>;
  afterEach(async () => {
    await t.cap.stop();
    t.ctx.cleanup();
  });

  it('is disabled by default and touches nothing', async () => {
    const clock = new FakeClock();
    const radio = new FakeWifi();
    const ctx = createTestCtx({ clock });
    t = { clock, radio, ctx, cap: new WifiCapability({ adapter: radio }) };
    await t.cap.start(ctx);
    await clock.advance(POLL * 2);
    assert.equal(reported(t.cap).status, 'disabled');
    assert.deepEqual(reported(t.cap).details, { ssid: null, connected: false, rssi: null, lines: [] });
    assert.deepEqual(radio.connects, []);
  });

  it('joins the configured SSID with the passphrase from the file and reports RSSI', async () => {
    t = setup();
    t.radio.networks.set('Surgery-Backup', { passphrase: SECRET, rssi: -61 });
    await t.cap.start(t.ctx);
    await t.clock.advance(1);
    assert.deepEqual(t.radio.connects, ['Surgery-Backup']);
    const h = reported(t.cap);
    assert.equal(h.status, 'ok');
    assert.deepEqual(h.details, { ssid: 'Surgery-Backup', connected: true, rssi: -61, lines: ['wifi: joined Surgery-Backup (RSSI -61 dBm)'] });
    t.radio.networks.set('Surgery-Backup', { passphrase: SECRET, rssi: -75 });
    await t.clock.advance(POLL);
    assert.equal((reported(t.cap).details as { rssi: number }).rssi, -75);
    assert.equal(t.radio.connects.length, 1, 'no rejoin while associated');
  });

  it('rejoins with backoff after the network drops, and never logs the passphrase', async () => {
    t = setup({ reconnect: { initialMs: 5_000, maxMs: 20_000 } });
    t.radio.networks.set('Surgery-Backup', { passphrase: SECRET, rssi: -61 });
    await t.cap.start(t.ctx);
    await t.clock.advance(1);
    t.radio.networks.delete('Surgery-Backup'); // access point off
    await t.clock.advance(POLL);
    assert.equal(reported(t.cap).status, 'degraded');
    assert.match(reported(t.cap).summary, /cannot join Surgery-Backup/);
    const before = t.radio.connects.length;
    await t.clock.advance(60_000);
    const attempts = t.radio.connects.length - before;
    assert.ok(attempts >= 2 && attempts <= 8, `retried with backoff, not every second (${attempts})`);
    t.radio.networks.set('Surgery-Backup', { passphrase: SECRET, rssi: -58 });
    await t.clock.advance(20_000 + 1); // at most one backoff cap away
    assert.equal(reported(t.cap).status, 'ok');
    const everything = JSON.stringify(t.ctx.logged) + JSON.stringify(reported(t.cap));
    assert.ok(!everything.includes(SECRET), 'passphrase must never reach logs or health');
  });

  it('a wrong passphrase or missing file is reported, not thrown', async () => {
    t = setup({ passphraseFile: '/etc/surgery-edge/missing.psk' });
    t.radio.networks.set('Surgery-Backup', { passphrase: SECRET, rssi: -61 });
    await t.cap.start(t.ctx);
    await t.clock.advance(1);
    assert.match(reported(t.cap).summary, /passphrase file unreadable \(ENOENT\)/);
    assert.deepEqual(t.radio.connects, []);
  });

  it('nmcli failing is reported and the capability keeps checking', async () => {
    t = setup();
    t.radio.failStatus = true;
    await t.cap.start(t.ctx);
    await t.clock.advance(1);
    assert.match(reported(t.cap).summary, /not installed/);
    t.radio.failStatus = false;
    t.radio.networks.set('Surgery-Backup', { passphrase: SECRET, rssi: -70 });
    await t.clock.advance(POLL);
    assert.equal(reported(t.cap).status, 'ok');
  });
});
