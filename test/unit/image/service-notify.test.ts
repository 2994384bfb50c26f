import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SystemdNotifier } from '../../../agent/src/platform/service-notify.js';
import { FakeRunner } from '../../helpers/fake-runner.js';

describe('systemd notify', () => {
  it('does nothing outside a notify unit', async () => {
    const r = new FakeRunner();
    const n = new SystemdNotifier(r, {});
    assert.equal(n.active, false);
    assert.equal(n.watchdogIntervalMs, null);
    await n.ready('x');
    await n.watchdog();
    assert.equal(r.calls.length, 0);
  });

  it('sends READY with a status, then WATCHDOG=1 at half of WatchdogSec, through systemd-notify', async () => {
    const r = new FakeRunner().on('systemd-notify', () => ({}));
    const n = new SystemdNotifier(r, { NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42);
    assert.equal(n.watchdogIntervalMs, 15_000);
    await n.ready('running');
    await n.watchdog();
    await n.stopping();
    assert.deepEqual(
      r.calls.map((c) => c.args),
      [['--ready', '--status=running'], ['WATCHDOG=1'], ['STOPPING=1']],
    );
  });

  it('ignores a watchdog meant for another process (inherited environment)', () => {
    const n = new SystemdNotifier(new FakeRunner(), { NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '1' }, 42);
    assert.equal(n.watchdogIntervalMs, null);
  });
});
