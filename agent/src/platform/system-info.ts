import { loadavg, uptime } from 'node:os';
import si from 'systeminformation';
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

/** Real implementation over the systeminformation package; each probe fails soft to null. */
export class HostSystemInfo implements SystemInfo {
  private vcgencmdMissing = false;
  constructor(private readonly commands: CommandRunner) {}

  async read(): Promise<SystemHealth> {
    const [load, mem, fs, temp, throttled] = await Promise.all([
      si.currentLoad().catch(() => null),
      si.mem().catch(() => null),
      si.fsSize().catch(() => []),
      si.cpuTemperature().catch(() => null),
      this.throttled(),
    ]);
    const disks = (fs ?? [])
      .filter((d) => d.size > 0 && (d.mount === '/' || d.mount.startsWith('/var') || d.mount.startsWith('/boot')))
      .map((d) => ({ mount: d.mount, sizeBytes: d.size, usedPct: round(d.use ?? 0) }));
    return {
      cpuLoadPct: load ? round(load.currentLoad) : null,
      loadAvg1: round(loadavg()[0] ?? 0, 2),
      memUsedPct: mem && mem.total ? round(((mem.total - mem.available) / mem.total) * 100) : null,
      memTotalBytes: mem ? mem.total : null,
      disks,
      cpuTempC: temp && typeof temp.main === 'number' && temp.main > 0 ? round(temp.main) : null,
      throttled,
      uptimeS: Math.round(uptime()),
    };
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
