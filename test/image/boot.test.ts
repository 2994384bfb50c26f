import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { freePort, mosquittoMissing, TestBroker } from '../helpers/mosquitto.js';
import { ARCH, IMAGE, imageMissing, overlay, REPO, VERSION, waitHttp, writeFigures } from './image-fixture.js';
import { GUESTFWD_ADDR, QemuVm } from './qemu-vm.js';

const ID = 'P81001-01';
const STICK = join(REPO, 'provisioning/enrol-stick.sh');
const PKI = join(REPO, 'provisioning/pki.sh');
const BROKER_GUEST_PORT = 8883;
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: 'pipe' }).toString();

/**
 * `make test-image`: the built image boots in qemu from UEFI through GRUB into slot A, systemd has
 * the agent active (it sent READY) and being pinged by its watchdog, the root is the read-only
 * squashfs with the data partition under it, and the status page answers on the LAN side saying
 * "Not enrolled" (no identity on first boot). Then the runbook's enrolment, as an ICB engineer
 * does it (docs/image.md): the enrolment stick present at first boot gets the box's CSR (its key
 * stays on the data partition), the ICB CA signs it, the practice bundle goes back on the stick, and
 * at the next boot the box installs it and comes online on the ICB broker (a real mosquitto with
 * TLS client certificates, reached through a qemu guestfwd). Prints the boot figures as JSON.
 */
describe(`appliance image boots (${ARCH})`, { skip: imageMissing() }, () => {
  let dir: string;
  let vm: QemuVm;
  let port: number;
  let stick: string;
  let broker: TestBroker | undefined;
  const fig: Record<string, unknown> = { image: IMAGE };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'se-boot-'));
    port = await freePort();
    stick = join(dir, 'stick.img');
    sh(STICK, ['format', stick, ID]);
    const guestfwd: { guestPort: number; hostPort: number }[] = [];
    if (!mosquittoMissing()) {
      // The ICB's broker and CA; its certificate also names the address the guest reaches it at.
      broker = await new TestBroker().init([]);
      // pki.sh never overwrites a key: re-issue the broker's certificate with the guest's address.
      for (const f of ['server.key', 'server.crt']) rmSync(join(broker.pki, f));
      sh(PKI, ['server', broker.pki, 'localhost', '127.0.0.1', GUESTFWD_ADDR]);
      await broker.start();
      guestfwd.push({ guestPort: BROKER_GUEST_PORT, hostPort: broker.port });
    }
    vm = new QemuVm({ arch: ARCH, disk: overlay(dir), dir, statusPort: port, sticks: [stick], guestfwd });
    fig.accel = vm.accel;
    vm.start();
  });
  after(async () => {
    await vm?.powerCut();
    await broker?.close();
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
    const props = [
      'ActiveState',
      'SubState',
      'Type',
      'NRestarts',
      'StatusText',
      'WatchdogUSec',
      'WatchdogTimestampMonotonic',
      'ActiveEnterTimestampMonotonic',
      'ExecMainStartTimestampMonotonic',
    ];
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
    const st = JSON.parse((await vm.exec('/usr/bin/surgery-edge', ['update', 'status'])).out) as {
      version: string;
      boot: string;
      bootState: { booted: string; active: string };
    };
    assert.equal(st.version, VERSION);
    assert.equal(st.boot, 'grub');
    assert.deepEqual([st.bootState.booted, st.bootState.active], ['a', 'a']);
    const df = (await vm.exec('/bin/df', ['-B1', '--output=size', '/data'])).out.trim().split('\n')[1];
    fig.dataPartitionBytes = Number(df);
  });

  it('first boot with the enrolment stick: the box writes its CSR to it and keeps the key', async () => {
    const line = await vm.waitConsole(/surgery-edge-enrol-stick: (CSR.*)/, 5 * 60_000);
    assert.match(line, /^CSR: P81001-01\.csr written/);
    const pub = (await vm.sh('openssl pkey -in /etc/surgery-edge/mqtt/device.key -pubout')).out;
    assert.match(pub, /BEGIN PUBLIC KEY/);
    assert.match((await vm.sh('stat -c %a /etc/surgery-edge/mqtt/device.key')).out, /^600/);
    await vm.spawn('/usr/bin/systemctl', ['poweroff']);
    await vm.waitExit(3 * 60_000);
    const got = join(dir, 'from-stick');
    const csr = sh(STICK, ['get-csr', stick, got]).trim();
    assert.equal(sh('openssl', ['req', '-in', csr, '-noout', '-pubkey']), pub, 'the CSR carries the key made on the box');
    for (const f of readdirSync(got)) assert.doesNotMatch(readFileSync(join(got, f), 'utf8'), /PRIVATE KEY/, `${f} on the stick`);
    assert.doesNotMatch(sh('mdir', ['-b', '-i', stick, '::/']), /\.key/i);
    fig.csrFile = csr.split('/').at(-1);
  });

  it('second boot with the practice bundle on the stick: enrolled, online on the ICB broker', { skip: mosquittoMissing() }, async () => {
    const b = broker!;
    sh(PKI, ['sign-csr', b.pki, join(dir, 'from-stick', `${ID}.csr`), ID]);
    const tar = sh(join(REPO, 'provisioning/practice.sh'), [
      b.pki,
      ID,
      'P81001',
      'High Street Surgery',
      `mqtts://${GUESTFWD_ADDR}:${BROKER_GUEST_PORT}`,
    ]).trim();
    sh(STICK, ['put', stick, tar]);
    vm.start(); // qemu truncates console.log: only this boot's lines from here
    const line = await vm.waitConsole(/surgery-edge-enrol-stick: (ENROLLED.*|REFUSED.*)/, 15 * 60_000);
    assert.match(line, /^ENROLLED: enrolled as P81001-01 \(High Street Surgery\)/);
    const t = performance.now();
    const online = sh(join(REPO, 'provisioning/check-online.sh'), [b.pki, ID, b.url, '600']);
    fig.enrolledToOnlineS = +((performance.now() - t) / 1000).toFixed(1);
    assert.match(online, /"online":true/);
    assert.match(online, new RegExp(`"version":"${VERSION.replace(/\./g, '\\.')}"`));
    const api = JSON.parse((await waitHttp(port, '/api/status', 60_000)).body) as {
      state: { level: string };
      capabilities: Record<string, { details?: Record<string, unknown> }>;
    };
    assert.equal(api.capabilities.enrolment?.details?.enrolled, true);
    assert.notEqual(api.state.level, 'unenrolled');
    await vm.powerCut();
    assert.match(sh(STICK, ['result', stick]), /ENROLLED/);
  });

  it('prints its figures', () => {
    fig.bootStalls = vm.stalls;
    writeFigures(`boot-${ARCH}`, fig);
  });
});
