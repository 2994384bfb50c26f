import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import { SystemHealthSchema } from '../../../contract/mqtt.js';
import { HostSystemInfo, parseMeminfo, parseMounts, parseProcStat } from '../../../agent/src/platform/system-info.js';
import { FakeRunner } from '../../helpers/fake-runner.js';

/** A fixture root holding the files a Raspberry Pi's /proc and /sys would (values from a real Pi 5). */
function fixture(root: string, files: Record<string, string>): void {
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), text);
  }
}

const MEMINFO =
  'MemTotal:        8245280 kB\nMemFree:         6120000 kB\nMemAvailable:    7000000 kB\nBuffers:           50000 kB\nCached:           800000 kB\n';
const stat = (user: number, idle: number) => `cpu  ${user} 0 ${user} ${idle} 0 0 0 0 0 0\ncpu0 1 0 1 1 0 0 0 0 0 0\nintr 1\n`;

describe('HostSystemInfo from /proc and /sys (fixture tree)', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'se-sysinfo-'));
    mkdirSync(join(root, 'boot/firmware'), { recursive: true });
    fixture(root, {
      '/proc/stat': stat(1000, 8000),
      '/proc/meminfo': MEMINFO,
      '/proc/uptime': '5321.42 10000.00\n',
      '/proc/loadavg': '0.42 0.30 0.20 1/200 1234\n',
      '/proc/self/mounts': [
        '/dev/mmcblk0p2 / ext4 rw,noatime 0 0',
        'proc /proc proc rw 0 0',
        'tmpfs /run tmpfs rw 0 0',
        'tmpfs /var/tmp tmpfs rw 0 0',
        '/dev/mmcblk0p1 /boot/firmware vfat rw 0 0',
        '/dev/mmcblk0p2 / ext4 rw,noatime 0 0',
        '/dev/sda1 /srv ext4 rw 0 0',
        '',
      ].join('\n'),
      '/sys/class/thermal/thermal_zone0/type': 'gpu-thermal\n',
      '/sys/class/thermal/thermal_zone0/temp': '39000\n',
      '/sys/class/thermal/thermal_zone1/type': 'cpu-thermal\n',
      '/sys/class/thermal/thermal_zone1/temp': '51234\n',
    });
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('reads every figure, in the MQTT contract shape', async () => {
    const sys = new HostSystemInfo(new FakeRunner(), root);
    const h = await sys.read();
    assert.ok(Value.Check(SystemHealthSchema, h), JSON.stringify([...Value.Errors(SystemHealthSchema, h)].slice(0, 3)));
    assert.equal(h.memTotalBytes, 8245280 * 1024);
    assert.equal(h.memUsedPct, 15.1); // (8245280 - 7000000) / 8245280
    assert.equal(h.uptimeS, 5321);
    assert.equal(h.loadAvg1, 0.42);
    assert.equal(h.cpuTempC, 51.2, 'the CPU zone, not the first zone');
    assert.equal(h.cpuLoadPct, 20); // first read: since boot, (1000 + 1000) / 10000
    // Only / and /boot...: pseudo filesystems, tmpfs under /var and other mounts are left out; / once.
    assert.deepEqual(
      h.disks.map((d) => d.mount),
      ['/', '/boot/firmware'],
    );
    const fs = await statfs(root);
    assert.equal(h.disks[0]!.sizeBytes, fs.blocks * fs.bsize);
    assert.ok(h.disks[0]!.usedPct > 0 && h.disks[0]!.usedPct <= 100);
  });

  it('CPU load is the busy share since the previous read', async () => {
    const sys = new HostSystemInfo(new FakeRunner(), root);
    await sys.read();
    fixture(root, { '/proc/stat': stat(1000 + 300, 8000 + 400) }); // +600 busy of +1000
    assert.equal((await sys.read()).cpuLoadPct, 60);
    fixture(root, { '/proc/stat': stat(1300, 8400) }); // no ticks since: unknown, not 0 or NaN
    assert.equal((await sys.read()).cpuLoadPct, null);
    fixture(root, { '/proc/stat': stat(1000, 8000) });
  });

  it('a box without the files (or with garbage in them) gives nulls, never a crash', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'se-sysinfo-empty-'));
    try {
      fixture(empty, { '/proc/stat': 'garbage\n', '/proc/meminfo': 'MemTotal: lots\n' });
      const h = await new HostSystemInfo(new FakeRunner(), empty).read();
      assert.ok(Value.Check(SystemHealthSchema, h));
      assert.equal(h.cpuLoadPct, null);
      assert.equal(h.memUsedPct, null);
      assert.equal(h.memTotalBytes, null);
      assert.equal(h.cpuTempC, null);
      assert.deepEqual(h.disks, []);
      assert.ok(h.uptimeS > 0, 'falls back to os.uptime()');
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('parsers', () => {
    assert.deepEqual(parseProcStat('cpu  10 5 5 70 10 0 0 0 0 0\n'), { busy: 20, total: 100 });
    assert.equal(parseProcStat('cpu0 1 2 3 4\n'), null);
    assert.deepEqual(parseMeminfo('MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n'), { total: 1024000, available: 409600 });
    assert.deepEqual(parseMounts('/dev/sda2 /var/lib/surgery\\040edge ext4 rw 0 0\n'), ['/var/lib/surgery edge']);
  });

  it('on this machine: the real /proc gives figures in range', async () => {
    const h = await new HostSystemInfo(new FakeRunner()).read();
    assert.ok(Value.Check(SystemHealthSchema, h));
    assert.ok(h.memTotalBytes! > 0 && h.memUsedPct! > 0 && h.memUsedPct! < 100);
    assert.ok(h.cpuLoadPct! >= 0 && h.cpuLoadPct! <= 100);
    assert.ok(h.disks.some((d) => d.mount === '/'));
  });
});

describe('surgery-edge hardware (systeminformation, in its own process)', () => {
  it('prints the inventory as JSON, with this machine memory and interfaces', () => {
    const repo = join(import.meta.dirname, '../../..');
    const out = execFileSync(join(repo, 'scripts/node'), ['--import', 'tsx', join(repo, 'agent/src/main.ts'), 'hardware', '--json'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    const inv = JSON.parse(out) as { memoryBytes: number; interfaces: { name: string }[]; cpu: { cores: number } };
    assert.equal(inv.memoryBytes, totalmem());
    assert.ok(inv.interfaces.some((n) => n.name === 'lo'));
    assert.ok(inv.cpu.cores >= 1);
  });
});
