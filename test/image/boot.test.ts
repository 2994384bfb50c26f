import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../helpers/mosquitto.js';
import { ARCH, IMAGE, imageMissing, overlay, VERSION, waitHttp, writeFigures } from './image-fixture.js';
import { QemuVm } from './qemu-vm.js';

/**
 * `make test-image`: the built image boots in qemu from UEFI through GRUB into slot A, systemd has
 * the agent active (it sent READY) and being pinged by its watchdog, the root is the read-only
 * squashfs with the data partition under it, and the status page answers on the LAN side saying
 * "Not enrolled" (no identity on first boot). Prints the boot figures as JSON.
 */
describe(`appliance image boots (${ARCH})`, { skip: imageMissing() }, () => {
  let dir: string;
  let vm: QemuVm;
  let port: number;
  const fig: Record<string, unknown> = { image: IMAGE };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'se-boot-'));
    port = await freePort();
    vm = new QemuVm({ arch: ARCH, disk: overlay(dir), dir, statusPort: port });
    fig.accel = vm.accel;
    vm.start();
  });
  after(async () => {
    await vm?.powerCut();
    if (!process.env.SE_KEEP) rmSync(dir, { recursive: true, force: true });
  });

  it('serves the status page on the LAN side, saying "Not enrolled"', async () => {
    const page = await waitHttp(port, '/', 15 * 60_000);
    fig.powerOnToStatusPageS = +((performance.now() - vm.startedAt) / 1000).toFixed(1);
    assert.match(page.body, /Not enrolled/);
    const api = await waitHttp(port, '/api/status', 10_000);
    const s = JSON.parse(api.body) as { state: { level: string }; capabilities: Record<string, { details?: Record<string, unknown> }> };
    assert.equal(s.state.level, 'unenrolled');
    assert.equal(s.capabilities.enrolment?.details?.enrolled, false);
    assert.equal(s.capabilities.update?.details?.booted, 'a');
  });

  it('systemd has the agent active after READY, with its watchdog being pinged', async () => {
    await vm.waitForAgent(5 * 60_000);
    const props = ['ActiveState', 'SubState', 'Type', 'NRestarts', 'StatusText', 'WatchdogUSec', 'WatchdogTimestampMonotonic', 'ActiveEnterTimestampMonotonic', 'ExecMainStartTimestampMonotonic'];
    const u = await vm.unit('surgery-edge.service', props);
    assert.equal(u.Type, 'notify');
    assert.equal(u.ActiveState, 'active', JSON.stringify(u));
    assert.equal(u.SubState, 'running');
    assert.equal(u.NRestarts, '0');
    assert.match(u.StatusText!, /^running /);
    assert.equal(u.WatchdogUSec, '1min');
    fig.kernelToAgentReadyS = +(Number(u.ActiveEnterTimestampMonotonic) / 1e6).toFixed(1);
    fig.agentStartToReadyS = +((Number(u.ActiveEnterTimestampMonotonic) - Number(u.ExecMainStartTimestampMonotonic)) / 1e6).toFixed(1);
    const first = Number(u.WatchdogTimestampMonotonic);
    await sleep(35_000);
    const later = await vm.unit('surgery-edge.service', props);
    assert.ok(Number(later.WatchdogTimestampMonotonic) > first, `watchdog pinged again within 35 s (${first} -> ${later.WatchdogTimestampMonotonic})`);
    assert.equal(later.NRestarts, '0');
    const up = await vm.exec('/bin/cat', ['/proc/uptime']);
    fig.uptimeAtCheckS = Number(up.out.split(' ')[0]);
  });

  it('runs slot A from a read-only squashfs root, with state and config on the data partition', async () => {
    assert.match((await vm.exec('/bin/cat', ['/proc/cmdline'])).out, /surgery_edge\.slot=a/);
    const root = (await vm.exec('/usr/bin/findmnt', ['-no', 'FSTYPE,OPTIONS', '/'])).out;
    assert.match(root, /^squashfs\s+ro[,\s]/);
    const w = await vm.sh('touch /usr/should-fail');
    assert.notEqual(w.code, 0);
    assert.match(w.err, /Read-only file system/);
    assert.match((await vm.exec('/usr/bin/findmnt', ['-no', 'SOURCE,FSTYPE', '/var/lib/surgery-edge'])).out, /vda5\S*\s+ext4/);
    assert.match((await vm.exec('/usr/bin/findmnt', ['-no', 'SOURCE', '/etc/surgery-edge'])).out, /vda5/);
    const st = JSON.parse((await vm.exec('/usr/bin/surgery-edge', ['update', 'status'])).out) as { version: string; boot: string; bootState: { booted: string; active: string } };
    assert.equal(st.version, VERSION);
    assert.equal(st.boot, 'grub');
    assert.deepEqual([st.bootState.booted, st.bootState.active], ['a', 'a']);
    const df = (await vm.exec('/bin/df', ['-B1', '--output=size', '/data'])).out.trim().split('\n')[1];
    fig.dataPartitionBytes = Number(df);
  });

  it('prints its figures', () => {
    writeFigures(`boot-${ARCH}`, fig);
  });
});
