import { changedKeys, meaningful, type Flat } from './change-detector.js';
import type { TelemetryMessage } from '../../../contract/mqtt.js';

export type Decision = { send: 'full'; trigger: 'interval' | 'change' | 'refresh'; changed: string[] } | { send: 'heartbeat' } | { send: 'none' };

export interface PolicyTimes {
  /** Heartbeat period on 4G (`cellularIntervalMs`). */
  heartbeatMs: number;
  /** A full report at least this often on 4G, changed or not (`cellularFullEveryMs`). */
  fullEveryMs: number;
  /** How often the sample is taken on 4G (`cellularCheckMs`): a tick early by up to half of it counts as due. */
  checkMs: number;
}

/**
 * Which message one sample becomes (docs/mqtt-contract.md, "Telemetry on 4G"). On a primary link,
 * every sample is a full report, as before. On 4G (`onChange`): a full report when a meaningful
 * field changed since the last full report (change-detector.ts), or when the last one is
 * `fullEveryMs` old; otherwise a heartbeat once per `heartbeatMs`; otherwise nothing. A
 * balena-supervisor-style diff was not taken: a partial report would blank the columns an older
 * fleet derives from the missing capabilities, so a report stays whole and is just sent less.
 */
export class ReportPolicy {
  private last: Flat | null = null;
  private lastFullAt = -Infinity;
  private lastSentAt = -Infinity;

  constructor(private readonly times: PolicyTimes) {}

  decide(msg: TelemetryMessage, onChange: boolean): Decision {
    const now = msg.at;
    const flat = meaningful(msg, this.last);
    if (!onChange) return this.full(now, flat, 'interval', []);
    const changed = changedKeys(this.last, flat);
    // The first report of this run has nothing to compare with: a change of everything, listed as none.
    if (changed.length) return this.full(now, flat, 'change', this.last ? changed : []);
    const slack = this.times.checkMs / 2;
    if (now - this.lastFullAt >= this.times.fullEveryMs - slack) return this.full(now, flat, 'refresh', []);
    if (now - this.lastSentAt >= this.times.heartbeatMs - slack) return { send: 'heartbeat' };
    return { send: 'none' };
  }

  /** A heartbeat went out (it is skipped while offline or while the outbox is draining). */
  heartbeatSent(at: number): void {
    this.lastSentAt = at;
  }

  private full(now: number, flat: Flat, trigger: 'interval' | 'change' | 'refresh', changed: string[]): Decision {
    this.last = flat;
    this.lastFullAt = now;
    this.lastSentAt = now;
    return { send: 'full', trigger, changed };
  }
}
