import type { UplinkState } from '../core/events.js';

/**
 * Pure health detector for one uplink: per-target ring buffers plus consecutive-failure and
 * consecutive-success run lengths, judged on a quorum of targets. No I/O, no timers.
 *
 * Why run lengths and not windowed loss %: under 20% iid packet loss in each direction a probe
 * fails ~36% of the time, so a 10-sample window regularly shows 50%+ loss. A run of k failures on
 * one target happens with p^k, and on every one of n targets at once with about p^(k*n):
 * 0.36^12 ~ 5e-6 for 4 targets x 3 probes. A silent blackhole fails every probe, so the same rule
 * fires after k probe intervals + one timeout (~1.3 s at 250 ms / 600 ms).
 */
export interface DetectorOptions {
  window: number;
  allFailRun: number;
  quorumFailRun: number;
  upRun: number;
  degradedLossPct: number;
  degradedLatencyMs: number;
}

export interface Verdict {
  state: UplinkState;
  reason: string;
}

class TargetTrack {
  private readonly ok: Uint8Array;
  private readonly rtt: Float64Array;
  private n = 0;
  private head = 0;
  failRun = 0;
  okRun = 0;
  constructor(readonly size: number) {
    this.ok = new Uint8Array(size);
    this.rtt = new Float64Array(size);
  }
  push(ok: boolean, rttMs: number): void {
    this.ok[this.head] = ok ? 1 : 0;
    this.rtt[this.head] = rttMs;
    this.head = (this.head + 1) % this.size;
    if (this.n < this.size) this.n++;
    if (ok) {
      this.okRun++;
      this.failRun = 0;
    } else {
      this.failRun++;
      this.okRun = 0;
    }
  }
  get samples(): number {
    return this.n;
  }
  lossPct(): number | null {
    if (this.n === 0) return null;
    let bad = 0;
    for (let i = 0; i < this.n; i++) if (!this.ok[i]) bad++;
    return (bad * 100) / this.n;
  }
  /** Median RTT of successful samples in the window. */
  latencyMs(): number | null {
    const v: number[] = [];
    for (let i = 0; i < this.n; i++) if (this.ok[i]) v.push(this.rtt[i]!);
    if (!v.length) return null;
    v.sort((a, b) => a - b);
    return v[Math.floor(v.length / 2)]!;
  }
  reset(): void {
    this.n = 0;
    this.head = 0;
    this.failRun = 0;
    this.okRun = 0;
  }
}

export class UplinkDetector {
  private readonly tracks: TargetTrack[];
  private carrier = true;
  private carrierReason = 'no carrier';
  private state: UplinkState = 'unknown';

  constructor(
    targets: number,
    private readonly opts: DetectorOptions,
  ) {
    this.tracks = Array.from({ length: targets }, () => new TargetTrack(opts.window));
  }

  get current(): UplinkState {
    return this.state;
  }

  /** Record one probe result; returns the (possibly unchanged) verdict. */
  record(target: number, ok: boolean, rttMs = 0): Verdict {
    this.tracks[target]?.push(ok, rttMs);
    return this.evaluate();
  }

  /**
   * Kernel carrier events count at once: no carrier means down now; carrier back means unknown
   * until probes prove it (a link is never assumed up before something proved it).
   */
  setCarrier(up: boolean, why = 'no carrier'): Verdict {
    if (!up) this.carrierReason = why;
    if (up === this.carrier) return this.evaluate();
    this.carrier = up;
    for (const t of this.tracks) t.reset();
    if (!up) return this.set('down', why);
    return this.set('unknown', 'carrier back; waiting for probes');
  }

  get hasCarrier(): boolean {
    return this.carrier;
  }

  /** No address/route yet (e.g. 4G not attached): nothing proven. */
  markUnavailable(reason: string): Verdict {
    for (const t of this.tracks) t.reset();
    return this.set(this.state === 'down' ? 'down' : 'unknown', reason);
  }

  lossPct(): number | null {
    const v = this.tracks.map((t) => t.lossPct()).filter((x): x is number => x !== null);
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
  }

  latencyMs(): number | null {
    const v = this.tracks.map((t) => t.latencyMs()).filter((x): x is number => x !== null);
    if (!v.length) return null;
    v.sort((a, b) => a - b);
    return v[Math.floor(v.length / 2)]!;
  }

  private lastReason = 'no probes yet';
  get reason(): string {
    return this.lastReason;
  }

  private set(state: UplinkState, reason: string): Verdict {
    this.state = state;
    this.lastReason = reason;
    return { state, reason };
  }

  private evaluate(): Verdict {
    const n = this.tracks.length;
    if (!this.carrier) return this.set('down', this.carrierReason);
    if (n === 0) return this.set('unknown', 'no probe targets configured');
    const majority = Math.floor(n / 2) + 1;
    let allFailing = 0;
    let quorumFailing = 0;
    let healthy = 0;
    for (const t of this.tracks) {
      if (t.failRun >= this.opts.allFailRun) allFailing++;
      if (t.failRun >= this.opts.quorumFailRun) quorumFailing++;
      if (t.okRun >= this.opts.upRun) healthy++;
    }
    if (allFailing === n) return this.set('down', `all ${n} targets failed ${this.opts.allFailRun}+ probes in a row`);
    if (quorumFailing >= majority) return this.set('down', `${quorumFailing}/${n} targets failed ${this.opts.quorumFailRun}+ probes in a row`);
    if (this.state === 'down' || this.state === 'unknown') {
      // Recovery needs proof: a majority of targets answering several times in a row.
      if (healthy >= majority) return this.qualify(`${healthy}/${n} targets answering`);
      return this.set(this.state, this.state === 'unknown' ? 'waiting for probes' : this.lastReason);
    }
    return this.qualify(`${n - quorumFailing}/${n} targets answering`);
  }

  /** up vs degraded: windowed loss and median latency, informational (policy fails over on down). */
  private qualify(base: string): Verdict {
    const loss = this.lossPct();
    const lat = this.latencyMs();
    if (loss !== null && loss >= this.opts.degradedLossPct && this.tracks.every((t) => t.samples >= 3))
      return this.set('degraded', `${base}; loss ${loss.toFixed(0)}%`);
    if (lat !== null && lat >= this.opts.degradedLatencyMs) return this.set('degraded', `${base}; latency ${lat.toFixed(0)} ms`);
    return this.set('up', base);
  }
}
