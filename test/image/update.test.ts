import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { freePort } from '../helpers/mosquitto.js';
import { ARCH, IMAGE, imageMissing, OUT, overlay, REPO, ROOT_SQFS, VERSION, waitHttp, writeFigures } from './image-fixture.js';
import { GUESTFWD_ADDR, QemuVm } from './qemu-vm.js';

/**
 * `make test-image-update`: a signed A/B update in qemu, with the power cut twice.
 *   boot 1 (slot a): start an install from the bundle disk, cut the power mid-write
 *   boot 2: slot a again, install recorded as interrupted; install completely, reboot
 *   boot 3 (slot b, trial): cut the power before the health gate passes
 *   boot 4: slot a again (GRUB cleared the try flag), rollback reported; start a delta install
 *           (bundle format 2) over HTTP, cut the power once casync is fetching chunks
 *   boot 5: slot a again, install recorded as interrupted; delta install completely, reboot
 *   boot 6 (slot b, trial): the gate passes (uplink reachable for 45 s), slot b committed
 *   boot 7: slot b, committed
 * The bundle is the image's own root with the version bumped (an agent-only change), repacked by
 * image/mkroot-sqfs.sh as make image packs it, signed with the development key the image trusts
 * (make image without IMAGE_KEYS). The delta bundle and its chunk store are served over HTTP from
 * the host (10.0.2.100:8080 in the guest); the figures count every byte that server sent.
 */
const NEXT = VERSION.replace(/(\d+)$/, (m) => String(Number(m) + 1));
const DEV_KEY = join(OUT, 'dev-keys', 'update-key.pem');
const skip =
  imageMissing() ||
  (existsSync(DEV_KEY) ? false : `no development key ${DEV_KEY}: the image was built with IMAGE_KEYS, so this test cannot sign for it`) ||
  (process.getuid?.() !== 0 ? 'needs root (mkfs.ext4 -d with root-owned files)' : false);

type Api = {
  state: { level: string };
  capabilities: {
    update?: {
      summary: string;
      details: { phase: string; version: string; booted: string; active: string; trial: boolean; error?: { code: string; message: string } | null };
    };
    failover?: { details?: { active: string | null } };
  };
};

/** The image's root with package.json's version bumped: a real, bootable next release. */
function nextPayload(work: string): string {
  const out = join(OUT, 'test', `root-${NEXT}-${ARCH}.sqfs`);
  if (existsSync(out) && statSync(out).mtimeMs > statSync(ROOT_SQFS).mtimeMs) return out;
  mkdirSync(join(OUT, 'test'), { recursive: true });
  const tree = join(work, 'tree');
  execFileSync('unsquashfs', ['-q', '-n', '-d', tree, ROOT_SQFS], { stdio: 'pipe' });
  const pj = join(tree, 'opt/surgery-edge/package.json');
  const pkg = JSON.parse(execFileSync('cat', [pj]).toString()) as Record<string, unknown>;
  writeFileSync(pj, JSON.stringify({ ...pkg, version: NEXT }, null, 2) + '\n');
  execFileSync(join(REPO, 'image/mkroot-sqfs.sh'), [tree, `${out}.tmp`], { stdio: 'pipe' });
  rmSync(tree, { recursive: true, force: true });
  execFileSync('mv', [`${out}.tmp`, out]);
  return out;
}

/** The image with a data partition whose config has an uplink the VM can reach and a short gate. */
function testDisk(work: string): string {
  const raw = join(work, 'image.img');
  execFileSync('cp', ['--sparse=always', IMAGE, raw]);
  const data = join(work, 'data');
  mkdirSync(join(data, 'etc/surgery-edge/mqtt'), { recursive: true });
  mkdirSync(join(data, 'state'), { recursive: true });
  const target = (port: number) => ({ kind: 'tcp', host: GUESTFWD_ADDR, port });
  writeFileSync(
    join(data, 'etc/surgery-edge/config.yaml'),
    stringify({
      version: 1,
      site: { deviceId: 'unenrolled', practiceName: 'Not enrolled', odsCode: 'A00000' },
      enrolment: { required: true },
      update: { bootControl: 'grub', rebootDelayMs: 1000, healthGate: { timeoutMs: 300_000, stableMs: 45_000, requireBroker: false } },
      uplinks: [
        {
          name: 'wan',
          interface: 'enp0s5',
          kind: 'wired',
          priority: 1,
          table: 101,
          gateway: '10.0.2.2',
          probes: { intervalMs: 1000, timeoutMs: 900, targets: [target(7001), target(7002), target(7003)] },
        },
      ],
      cellular: { enabled: false },
      telemetry: { enabled: false },
    }),
    { mode: 0o600 },
  );
  // The agent refuses an invalid config at start: check it here, with the agent's own validator.
  execFileSync(join(REPO, 'agent/bin/surgery-edge'), ['check-config', join(data, 'etc/surgery-edge/config.yaml')], { stdio: 'pipe' });
  const part = join(work, 'data.img');
  execFileSync('mkfs.ext4', ['-q', '-L', 'se-data', '-E', 'root_owner=0:0', '-d', data, part, '256M']);
  const parts = (JSON.parse(execFileSync('sfdisk', ['-J', raw]).toString()) as { partitiontable: { partitions: { start: number }[] } }).partitiontable
    .partitions;
  execFileSync('dd', [`if=${part}`, `of=${raw}`, 'bs=512', `seek=${parts[4]!.start}`, 'conv=notrunc,sparse', 'status=none']);
  return overlay(work, raw);
}

describe(`A/B update in qemu with power cuts (${ARCH})`, { skip }, () => {
  let work: string;
  let vm: QemuVm;
  let port: number;
  let bundle: string;
  let server: Server;
  const served = { bytes: 0, chunks: 0, paths: [] as string[] };
  const fig: Record<string, unknown> = {};
  const log = (m: string) => process.stdout.write(`# ${m}\n`);

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'se-upd-vm-'));
    const t = performance.now();
    const payload = nextPayload(work);
    bundle = join(work, `surgery-edge-${NEXT}-${ARCH}.seb`);
    execFileSync(join(REPO, 'image/bundle/make-bundle.sh'), ['--key', DEV_KEY, '--version', NEXT, '--arch', ARCH, '--payload', payload, '--out', bundle], {
      stdio: 'pipe',
    });
    fig.bundleBytes = statSync(bundle).size;
    // The delta bundle: the same root, as a signed casync index plus a chunk store beside it.
    const delta = join(work, `surgery-edge-${NEXT}-${ARCH}.delta.seb`);
    execFileSync(
      join(REPO, 'image/bundle/make-bundle.sh'),
      ['--key', DEV_KEY, '--version', NEXT, '--arch', ARCH, '--payload', payload, '--out', delta, '--delta-store', join(work, `surgery-edge-${ARCH}.castr`)],
      { stdio: 'pipe' },
    );
    fig.deltaBundleFileBytes = statSync(delta).size;
    // What a 4G box downloads: served over HTTP from the host, every byte counted.
    server = createServer((req, res) => {
      const path = resolve(work, '.' + decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
      if (!path.startsWith(work + '/') || !existsSync(path) || !statSync(path).isFile()) return void res.writeHead(404).end();
      const body = readFileSync(path);
      served.bytes += body.length;
      served.paths.push(req.url ?? '');
      if (path.endsWith('.cacnk')) served.chunks++;
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    fig.prepareS = +((performance.now() - t) / 1000).toFixed(0);
    port = await freePort();
    // Every probe connection to 10.0.2.100:700x runs `cat` on the host: a reachable "internet"
    // that involves no address outside this machine.
    const disk = testDisk(work);
    copyFileSync(bundle, join(work, 'bundle.raw'));
    vm = new QemuVm({
      arch: ARCH,
      disk,
      dir: work,
      statusPort: port,
      extraDisks: [join(work, 'bundle.raw')],
      guestfwd: [...[7001, 7002, 7003].map((p) => ({ guestPort: p, cmd: 'cat' })), { guestPort: 8080, hostPort: (server.address() as AddressInfo).port }],
    });
    fig.accel = vm.accel;
  });
  after(async () => {
    await vm?.powerCut();
    server?.closeAllConnections();
    server?.close();
    if (!process.env.SE_KEEP) rmSync(work, { recursive: true, force: true });
  });

  const api = async (): Promise<Api> => JSON.parse((await waitHttp(port, '/api/status', 10_000)).body) as Api;
  async function boot(label: string): Promise<Api> {
    vm.start();
    await waitHttp(port, '/api/status', 15 * 60_000);
    await vm.waitForAgent(5 * 60_000);
    const s = await api();
    assert.ok(s.capabilities.update, `${label}: the status API answered without an update capability: ${JSON.stringify(s).slice(0, 300)}`);
    fig[`${label}PowerOnToStatusS`] = +((performance.now() - vm.startedAt) / 1000).toFixed(1);
    log(`${label}: slot ${s.capabilities.update?.details.booted} version ${s.capabilities.update?.details.version}: ${s.capabilities.update?.summary}`);
    return s;
  }
  const install = () => vm.exec('/usr/bin/surgery-edge', ['update', 'install', '/dev/vdb', '--version', NEXT], 20 * 60_000);
  /** Poll the console for the installer's write progress; return the fraction once it is >= lo (fail past hi). */
  async function waitProgress(from: number, lo: number, hi: number, timeoutMs: number): Promise<number> {
    const end = performance.now() + timeoutMs;
    for (;;) {
      const seen = [
        ...vm
          .console()
          .slice(from)
          .matchAll(/"step":"writing","done":(\d+),"total":(\d+)/g),
      ].map((m) => Number(m[1]) / Number(m[2]));
      const last = seen.at(-1) ?? 0;
      if (last >= lo) {
        assert.ok(last <= hi, `progress jumped to ${last} before the cut (console polled too slowly)`);
        return last;
      }
      if (!vm.running) throw new Error('VM stopped during the install');
      if (performance.now() > end) throw new Error(`install progress ${last} did not reach ${lo} within ${timeoutMs} ms\n${vm.console().slice(-1500)}`);
      await sleep(100);
    }
  }
  async function reboot(): Promise<void> {
    await vm.spawn('/usr/bin/systemctl', ['reboot']);
    await vm.waitExit(5 * 60_000);
  }

  it('boot 1 -> 2: a power cut in the middle of writing the slot leaves slot a booting', async () => {
    const s = await boot('boot1');
    assert.equal(s.capabilities.update?.details.booted, 'a');
    // The installer's progress lines ({"step":"writing","done":N,"total":M}) go to the serial
    // console, which qemu writes to console.log as they come: the cut happens at a known fraction
    // of the slot write, whatever speed the VM runs at (no sleeps guessing how far it got).
    const before = vm.console().length;
    // The serial console qemu writes to console.log: the 16550 ttyS0 on q35, the PL011 ttyAMA0 on
    // arm64's -machine virt (image/build.sh puts the same one on the kernel command line).
    const serial = ARCH === 'arm64' ? '/dev/ttyAMA0' : '/dev/ttyS0';
    await vm.spawn('/bin/sh', ['-c', `exec /usr/bin/surgery-edge update install /dev/vdb --version ${NEXT} >${serial} 2>&1`]);
    const cut = await waitProgress(before, 0.4, 0.9, 10 * 60_000);
    await vm.powerCut();
    fig.installCutAtFraction = +cut.toFixed(2);
    log(`power cut at ${(cut * 100).toFixed(0)} % of the slot write`);
    assert.doesNotMatch(vm.console().slice(before), /"ok":true/, 'the install had not finished when the power went');
    const s2 = await boot('boot2');
    assert.equal(s2.capabilities.update?.details.booted, 'a');
    assert.equal(s2.capabilities.update?.details.version, VERSION);
    assert.equal(s2.capabilities.update?.details.phase, 'failed');
    assert.match(s2.capabilities.update?.details.error?.message ?? '', /interrupted while installing/);
  });

  it('boot 2 -> 3: a full install arms slot b; a power cut during its trial returns to slot a', async () => {
    const t = performance.now();
    const r = await install();
    fig.installInVmS = +((performance.now() - t) / 1000).toFixed(1);
    assert.equal(r.code, 0, r.out + r.err);
    await reboot();
    const s3 = await boot('boot3');
    assert.equal(s3.capabilities.update?.details.booted, 'b');
    assert.equal(s3.capabilities.update?.details.version, NEXT);
    assert.equal(s3.capabilities.update?.details.trial, true);
    await vm.powerCut();
    const s4 = await boot('boot4');
    assert.equal(s4.capabilities.update?.details.booted, 'a');
    assert.equal(s4.capabilities.update?.details.version, VERSION);
    assert.equal(s4.capabilities.update?.details.phase, 'rolled-back');
    assert.match(s4.capabilities.update!.summary, /rolled back/);
  });

  const deltaUrl = `http://${GUESTFWD_ADDR}:8080/surgery-edge-${NEXT}-${ARCH}.delta.seb`;

  it('boot 4 -> 5: a power cut while a delta install is fetching chunks leaves slot a booting', async () => {
    served.chunks = 0;
    await vm.spawn('/bin/sh', ['-c', `exec /usr/bin/surgery-edge update install ${deltaUrl} --version ${NEXT} >/dev/null 2>&1`]);
    const end = performance.now() + 10 * 60_000;
    // casync has read the seed up to the first changed chunk and is writing slot b: cut now.
    while (served.chunks < 1) {
      if (performance.now() > end) throw new Error(`no chunk fetched within 10 min\n${vm.console().slice(-1500)}`);
      if (!vm.running) throw new Error('VM stopped during the delta install');
      await sleep(20);
    }
    await vm.powerCut();
    log(`power cut after the delta install fetched ${served.chunks} chunk(s)`);
    const s5 = await boot('boot5');
    assert.equal(s5.capabilities.update?.details.booted, 'a');
    assert.equal(s5.capabilities.update?.details.version, VERSION);
    assert.equal(s5.capabilities.update?.details.phase, 'failed');
    assert.match(s5.capabilities.update?.details.error?.message ?? '', /interrupted while installing/);
  });

  it('boot 5 -> 7: the delta bundle (<= 10 % of the full one) installs over HTTP, passes its health gate and is committed', async () => {
    served.bytes = served.chunks = 0;
    served.paths = [];
    const t = performance.now();
    const r = await vm.exec('/usr/bin/surgery-edge', ['update', 'install', deltaUrl, '--version', NEXT], 20 * 60_000);
    fig.deltaInstallInVmS = +((performance.now() - t) / 1000).toFixed(1);
    assert.equal(r.code, 0, r.out + r.err);
    const res = JSON.parse(r.out.trim().split('\n').at(-1)!) as { delta?: { chunks: number; fetchedBytes: number; bundleBytes: number } };
    assert.ok(res.delta, `a delta install reports what it fetched: ${r.out.slice(-500)}`);
    fig.deltaDownloadedBytes = served.bytes;
    fig.deltaChunks = served.chunks;
    fig.deltaPercentOfFull = +((100 * served.bytes) / (fig.bundleBytes as number)).toFixed(2);
    log(`delta download ${served.bytes} B (${served.chunks} chunks) = ${fig.deltaPercentOfFull} % of the ${fig.bundleBytes} B full bundle`);
    assert.ok(served.bytes <= (fig.bundleBytes as number) / 10, `delta download ${served.bytes} B is over 10 % of the full bundle`);
    assert.equal(served.bytes, res.delta.fetchedBytes + res.delta.bundleBytes, 'the agent counted what the server sent');
    await reboot();
    const s6 = await boot('boot6');
    assert.equal(s6.capabilities.update?.details.trial, true);
    assert.equal(s6.capabilities.update?.details.booted, 'b');
    assert.equal(s6.capabilities.update?.details.version, NEXT);
    const t2 = performance.now();
    let s = s6;
    while (s.capabilities.update?.details.phase !== 'committed' && performance.now() - t2 < 6 * 60_000) {
      await sleep(5000);
      s = await api();
    }
    fig.trialReadyToCommitS = +((performance.now() - t2) / 1000).toFixed(0);
    assert.equal(s.capabilities.update?.details.phase, 'committed', s.capabilities.update?.summary);
    assert.equal(s.capabilities.failover?.details?.active, 'wan');
    await reboot();
    const s7 = await boot('boot7');
    assert.equal(s7.capabilities.update?.details.booted, 'b');
    assert.equal(s7.capabilities.update?.details.active, 'b');
    assert.equal(s7.capabilities.update?.details.version, NEXT);
    fig.bootStalls = vm.stalls;
    writeFigures(`update-${ARCH}`, fig);
  });
});
