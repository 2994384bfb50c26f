import type { SystemHealth } from '../../contract/mqtt.js';
import type { SystemInfo } from '../../agent/src/platform/system-info.js';

/** For unit tests: fixed figures, counts reads. */
export class FakeSystemInfo implements SystemInfo {
  reads = 0;
  constructor(public value: Partial<SystemHealth> = {}) {}
  async read(): Promise<SystemHealth> {
    this.reads++;
    return {
      cpuLoadPct: 3.5,
      loadAvg1: 0.1,
      memUsedPct: 40,
      memTotalBytes: 4e9,
      disks: [{ mount: '/', sizeBytes: 32e9, usedPct: 21 }],
      cpuTempC: 48.2,
      throttled: null,
      uptimeS: 1234,
      ...this.value,
    };
  }
}
