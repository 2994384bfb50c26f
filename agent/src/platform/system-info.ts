import { readdir, readFile, statfs } from 'node:fs/promises';
import { loadavg, uptime } from 'node:os';
import type { SystemHealth } from '../../../contract/mqtt.js';
import type { CommandRunner } from './command.js';

/** The box's own health for telemetry: CPU, memory, disk, temperature, throttling, uptime. */
export interface SystemInfo {
  read(): Promise<SystemHealth>;
}

const round = (n: number, dp = 1) => Math.round(n * 10 ** dp) / 10 ** dp;

/**
 * Parses `vcgencmd get_throttled` ("throttled=0x50005"). Bits per the Raspberry Pi docs:
 * 0 under-voltage now, 2 throttled now, 16 under-voltage has occurred, 18 throttling has occurred.
 */
export function parseThrottled(stdout: string): SystemHealth['throttled'] {
  const m = /throttled=(0x[0-9a-fA-F]+)/.exec(stdout);
  if (!m) return null;
  const v = Number.parseInt(m[1]!, 16);
  return {
    raw: m[1]!,
    underVoltageNow: (v & 0x1) !== 0,
    throttledNow: (v & 0x4) !== 0,
    underVoltageSinceBoot: (v & 0x10000) !== 0,
    throttledSinceBoot: (v & 0x40000) !== 0,
  };
}

/** Pseudo filesystems never reported as disks (the status page and telemetry want the SD card / SSD). */
const PSEUDO_FS = new Set([
  'proc',
  'sysfs',
  'devpts',
  'devtmpfs',
  'tmpfs',
  'ramfs',
  'cgroup',
  'cgroup2',
  'securityfs',
  'debugfs',
  'tracefs',
  'mqueue',
  'pstore',
  'bpf',
  'autofs',
  'configfs',
  'fusectl',
  'hugetlbfs',
  'binfmt_misc',
  'efivarfs',
  'nsfs',
  'rpc_pipefs',
  'squashfs',
]);
/** Thermal zones that are the SoC/CPU, most specific first (Raspberry Pi, x86 package, generic SoC). */
const CPU_ZONES = ['cpu-thermal', 'cpu_thermal', 'x86_pkg_temp', 'soc_thermal', 'soc-thermal'];

/** CPU jiffies from the first line of /proc/stat: busy and total since boot. */
export function parseProcStat(text: string): { busy: number; total: number } | null {
  const m = /^cpu\s+(.*)$/m.exec(text);
  if (!m) return null;
  const f = m[1]!.trim().split(/\s+/).map(Number);
  if (f.length < 4 || f.some((n) => !Number.isFinite(n))) return null;
  // user nice system idle iowait irq softirq steal (guest is already inside user/nice).
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = f[3]! + (f[4] ?? 0);
  return { busy: total - idle, total };
}

/** MemTotal and MemAvailable from /proc/meminfo, bytes. */
export function parseMeminfo(text: string): { total: number; available: number } | null {
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  const total = kb('MemTotal');
  let available = kb('MemAvailable');
  // Kernels before 3.14 have no MemAvailable: free + buffers + cache is the old estimate.
  if (!Number.isFinite(available)) available = kb('MemFree') + kb('Buffers') + kb('Cached');
  return Number.isFinite(total) && total > 0 && Number.isFinite(available) ? { total, available } : null;
}

/** The mounts worth reporting from /proc/self/mounts: real filesystems on /, /var... and /boot..., each once. */
export function parseMounts(text: string): string[] {
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    const [, mount, type] = line.split(' ');
    if (!mount || !type || PSEUDO_FS.has(type)) continue;
    const path = mount.replace(/\\040/g, ' ');
    if (path === '/' || path.startsWith('/var') || path.startsWith('/boot')) seen.add(path);
  }
  return [...seen];
}

/**
 * The box's health from /proc and /sys: a handful of small file reads and statfs calls every 15 s.
 * It replaced systeminformation at steady state (~10 MB of resident modules for five numbers;
 * docs/architecture.md "Memory"); systeminformation still gives the one-off hardware inventory
 * (`surgery-edge hardware`), in its own short-lived process. `root` is a fixture tree in tests.
 */
export class HostSystemInfo implements SystemInfo {
  private vcgencmdMissing = false;
  private lastCpu: { busy: number; total: number } | null = null;

  constructor(
    private readonly commands: CommandRunner,
    private readonly root = '',
  ) {}

  async read(): Promise<SystemHealth> {
    const [stat, meminfo, mounts, uptimeText, loadText, temp, throttled] = await Promise.all([
      this.text('/proc/stat'),
      this.text('/proc/meminfo'),
      this.text('/proc/self/mounts'),
      this.text('/proc/uptime'),
      this.text('/proc/loadavg'),
      this.cpuTemp(),
      this.throttled(),
    ]);
    const mem = meminfo === null ? null : parseMeminfo(meminfo);
    const up = Number(uptimeText?.split(' ')[0]);
    const load1 = Number(loadText?.split(' ')[0]);
    return {
      cpuLoadPct: this.cpuLoad(stat),
      loadAvg1: round(Number.isFinite(load1) ? load1 : (loadavg()[0] ?? 0), 2),
      memUsedPct: mem ? round(((mem.total - mem.available) / mem.total) * 100) : null,
      memTotalBytes: mem ? mem.total : null,
      disks: await this.disks(mounts === null ? [] : parseMounts(mounts)),
      cpuTempC: temp,
      throttled,
      uptimeS: Math.round(Number.isFinite(up) ? up : uptime()),
    };
  }

  /** Busy share of all CPUs since the previous read (since boot on the first), as systeminformation's currentLoad gave. */
  private cpuLoad(stat: string | null): number | null {
    const now = stat === null ? null : parseProcStat(stat);
    if (!now) return null;
    const prev = this.lastCpu ?? { busy: 0, total: 0 };
    this.lastCpu = now;
    const dt = now.total - prev.total;
    return dt > 0 ? round(Math.min(100, Math.max(0, ((now.busy - prev.busy) / dt) * 100))) : null;
  }

  private async disks(mounts: string[]): Promise<SystemHealth['disks']> {
    const out: SystemHealth['disks'] = [];
    for (const mount of mounts) {
      try {
        const s = await statfs(this.root + mount);
        const size = s.blocks * s.bsize;
        const used = (s.blocks - s.bfree) * s.bsize;
        const avail = s.bavail * s.bsize;
        // df's Use%: used / (used + available to non-root), so the root reserve counts as full.
        if (size > 0) out.push({ mount, sizeBytes: size, usedPct: used + avail > 0 ? round((used / (used + avail)) * 100) : 0 });
      } catch {
        /* unmounted since /proc/self/mounts was read, or not ours to stat */
      }
    }
    return out;
  }

  /** The CPU/SoC thermal zone in degrees C; null on boards (or VMs) that report none. */
  private async cpuTemp(): Promise<number | null> {
    const dir = `${this.root}/sys/class/thermal`;
    let zones: string[];
    try {
      zones = (await readdir(dir)).filter((z) => z.startsWith('thermal_zone')).sort();
    } catch {
      return null;
    }
    const typed = await Promise.all(zones.map(async (z) => ({ z, type: (await this.text(`/sys/class/thermal/${z}/type`))?.trim() ?? '' })));
    const pick = CPU_ZONES.map((t) => typed.find((x) => x.type === t)).find(Boolean) ?? typed[0];
    if (!pick) return null;
    const milli = Number((await this.text(`/sys/class/thermal/${pick.z}/temp`))?.trim());
    return Number.isFinite(milli) && milli > 0 ? round(milli / 1000) : null;
  }

  private async text(path: string): Promise<string | null> {
    try {
      return await readFile(this.root + path, 'utf8');
    } catch {
      return null;
    }
  }

  private async throttled(): Promise<SystemHealth['throttled']> {
    if (this.vcgencmdMissing) return null;
    try {
      const r = await this.commands.run('vcgencmd', ['get_throttled'], { timeoutMs: 2000, allowFailure: true });
      return r.code === 0 ? parseThrottled(r.stdout) : null;
    } catch {
      // Not a Raspberry Pi (or no firmware tools): stop asking.
      this.vcgencmdMissing = true;
      return null;
    }
  }
}
