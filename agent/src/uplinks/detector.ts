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
  /** Median round trip at or above this is `slow` ("too slow for voice/clinical use"). */
  slowLatencyMs: number;
  /** Which targets are DNS resolvers (index -> true); DNS is judged on these alone as well. */
  dnsTargets?: readonly boolean[];
  /** DNS is "not answering" when every DNS target has failed this many probes in a row. */
  dnsFailRun?: number;
  /** Name used in sentences ("DNS not answering on BT broadband"). */
  label?: string;
}

/** DNS through this uplink: `unmeasured` when no DNS target is configured. */
export type { DnsHealth } from '../../../contract/kinds.js';
import type { DnsHealth } from '../../../contract/kinds.js';

export interface Verdict {
  state: UplinkState;
  reason: string;
}

/** Sample values in the ring: lost, answered in time, timed out but still waiting, answered late. */
const LOST = 0;
const OK = 1;
const PENDING = 2;
const LATE = 3;
const answered = (v: number | undefined) => v === OK || v === LATE;

function median(v: number[]): number | null {
  if (!v.length) return null;
  v.sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)]!;
}

class TargetTrack {
  private readonly ok: Uint8Array;
  private readonly rtt: Float64Array;
  private n = 0;
  /** Sequence number of the next sample; slot = seq % size. */
  private seq = 0;
  failRun = 0;
  okRun = 0;
  constructor(readonly size: number) {
    this.ok = new Uint8Array(size);
    this.rtt = new Float64Array(size);
  }
  /** Returns the sample's sequence number (for `settle` when a late answer comes in). */
  push(value: number, rttMs: number): number {
    const slot = this.seq % this.size;
    this.ok[slot] = value;
    this.rtt[slot] = rttMs;
    if (this.n < this.size) this.n++;
    if (value === OK) {
      this.okRun++;
      this.failRun = 0;
    } else {
      this.failRun++;
      this.okRun = 0;
    }
    return this.seq++;
  }
  /**
   * A timed-out sample's final outcome: answered late (ok, counted as latency, not loss) or lost.
   * The runs are recounted from the ring so a late answer ends a failure run it was part of.
   */
  settle(seq: number, ok: boolean, rttMs: number): boolean {
    if (seq >= this.seq || seq < this.seq - this.n) return false; // overwritten (or never pushed)
    const slot = seq % this.size;
    if (this.ok[slot] !== PENDING) return false;
    this.ok[slot] = ok ? LATE : LOST;
    this.rtt[slot] = rttMs;
    if (ok) this.recountRuns();
    return true;
  }
  private recountRuns(): void {
    let fails = 0;
    let oks = 0;
    for (let i = 1; i <= this.n; i++) {
      const v = this.ok[(this.seq - i) % this.size];
      if (answered(v)) {
        if (fails) break;
        oks++;
      } else {
        if (oks) break;
        fails++;
      }
    }
    // okRun may only grow by proof; a late answer never counts more than the streak it ends.
    this.failRun = Math.min(this.failRun, fails);
    this.okRun = Math.max(this.okRun, oks);
  }
  get samples(): number {
    return this.n;
  }
  /** Lost share of the settled samples (a probe still waiting for a late answer is not loss yet). */
  lossPct(): number | null {
    let bad = 0;
    let settled = 0;
    for (let i = 0; i < this.n; i++) {
      if (this.ok[i] === PENDING) continue;
      settled++;
      if (this.ok[i] === LOST) bad++;
    }
    return settled === 0 ? null : (bad * 100) / settled;
  }
  /** Median RTT of answered samples in the window (late answers included: they are slowness). */
  latencyMs(): number | null {
    return median(this.rtts(true));
  }
  /** The newest sample was answered in time. */
  latestInTime(): boolean {
    return this.seq > 0 && this.ok[(this.seq - 1) % this.size] === OK;
  }
  /** Some sample in the window was answered (in time or late). */
  answeredAny(): boolean {
    for (let i = 0; i < this.n; i++) if (answered(this.ok[i])) return true;
    return false;
  }
  /** 90th percentile of the in-time round trips in the window (one or two hiccups do not move it); null: none. */
  highInTime(): number | null {
    const v = this.rtts(false);
    if (!v.length) return null;
    v.sort((a, b) => a - b);
    return v[Math.floor(0.9 * (v.length - 1))]!;
  }
  /** RTTs of the answered samples; `late` false: only those answered in time. */
  rtts(late: boolean): number[] {
    const v: number[] = [];
    for (let i = 0; i < this.n; i++) if (this.ok[i] === OK || (late && this.ok[i] === LATE)) v.push(this.rtt[i]!);
    return v;
  }
  reset(): void {
    this.n = 0;
    this.seq = 0;
    this.failRun = 0;
    this.okRun = 0;
  }
}

/** A late answer within this many in-time round trips is slowness (HTTP: 2 round trips, + slack). */
const LATE_FACTOR = 3;

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

  /**
   * Record one probe result; returns the (possibly unchanged) verdict. `pending`: it timed out but
   * the prober still listens for a late answer (counts as a failure for the run rules, so a
   * blackhole is as fast as ever, but not as loss until `settle` says it was lost).
   */
  record(target: number, ok: boolean, rttMs = 0, pending = false): Verdict {
    this.lastSeq = this.tracks[target]?.push(ok ? OK : pending ? PENDING : LOST, rttMs) ?? -1;
    return this.evaluate();
  }

  /** Sequence number of the sample the last `record` stored (for `settle`). */
  lastSeq = -1;

  /**
   * The final outcome of a pending sample. A late answer is slowness, not loss, when the line is
   * slow: it came within LATE_FACTOR x the median in-time round trip of this uplink (an HTTP probe
   * takes two round trips), or no target's newest probe was answered in time (the whole line is
   * late). On a fast line a late answer is a lost packet that TCP retransmitted after its 1 s RTO:
   * that is loss, and counted as loss.
   */
  settle(target: number, seq: number, ok: boolean, rttMs: number): Verdict {
    const inTime = median(this.tracks.flatMap((t) => t.rtts(false)));
    const lineLate = !this.tracks.some((t) => t.latestInTime());
    const slowness = ok && (inTime === null || lineLate || rttMs <= LATE_FACTOR * inTime);
    this.tracks[target]?.settle(seq, slowness, rttMs);
    return this.evaluate();
  }

  /**
   * How long a probe to `target` may go unanswered before it is overdue and worth confirming:
   * twice that target's usual slow answer (90th percentile in time), at least `floorMs`, at most a
   * sixth of the timeout (a slow line, or round trips inflated by a busy CPU, still confirms well
   * before the timeout; the uplink's other answers keep a slow line from confirming: uplinks.ts).
   * Null (never overdue) when the target's newest probe was not answered in time
   * (already failing: a dead target must not keep starting confirmations).
   */
  overdueAfter(target: number, floorMs: number, timeoutMs: number): number | null {
    const t = this.tracks[target];
    if (!t?.latestInTime()) return null;
    const ms = Math.min(Math.max(floorMs, 2 * (t.highInTime() ?? timeoutMs)), Math.floor(timeoutMs / 6));
    return ms > 0 ? ms : null;
  }

  /** Consecutive failures of one target (0 when its newest probe answered). */
  failRun(target: number): number {
    return this.tracks[target]?.failRun ?? 0;
  }

  private dnsDown = false;

  /** DNS through this uplink, judged on its DNS targets only (with hysteresis). */
  dns(): DnsHealth {
    const idx = this.dnsIdx();
    if (!idx.length) return 'unmeasured';
    if (this.dnsDown) return 'failing';
    return idx.some((i) => this.tracks[i]!.answeredAny()) ? 'ok' : 'unknown';
  }

  /** The latest probe of some DNS target answered (null: no DNS target). */
  dnsAnswering(): boolean | null {
    const idx = this.dnsIdx();
    if (!idx.length) return null;
    return idx.some((i) => this.tracks[i]!.samples > 0 && this.tracks[i]!.failRun === 0);
  }

  private dnsIdx(): number[] {
    const d = this.opts.dnsTargets ?? [];
    return this.tracks.map((_, i) => i).filter((i) => d[i]);
  }

  /** Latch: failing after dnsFailRun failures on every DNS target, ok again after upRun answers on one. */
  private updateDns(): void {
    const idx = this.dnsIdx();
    if (!idx.length || !this.carrier) {
      this.dnsDown = false;
      return;
    }
    const run = this.opts.dnsFailRun ?? 12;
    if (!this.dnsDown && idx.every((i) => this.tracks[i]!.failRun >= run)) this.dnsDown = true;
    else if (this.dnsDown && idx.some((i) => this.tracks[i]!.okRun >= this.opts.upRun)) this.dnsDown = false;
  }

  private get label(): string {
    return this.opts.label ?? 'this uplink';
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
    this.dnsDown = false;
    if (!up) return this.set('down', why);
    return this.set('unknown', 'carrier back; waiting for probes');
  }

  get hasCarrier(): boolean {
    return this.carrier;
  }

  /** No address/route yet (e.g. 4G not attached): nothing proven. */
  markUnavailable(reason: string): Verdict {
    for (const t of this.tracks) t.reset();
    this.dnsDown = false;
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
    this.updateDns();
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
    // DNS not answering while the rest answers: `degraded`, said first and in words. Whether that
    // moves traffic is the failover policy's decision (failover.onDnsFailure), not a fake `down`:
    // the line still carries packets (phones by address, the VPN), and telephony reads `down`.
    const dnsWords = this.dnsDown ? `DNS not answering on ${this.label} (every DNS target failed ${this.opts.dnsFailRun ?? 12}+ probes in a row)` : '';
    if (this.state === 'down' || this.state === 'unknown') {
      // Recovery needs proof: a majority of targets answering several times in a row.
      if (healthy >= majority) return this.qualify(`${healthy}/${n} targets answering`, dnsWords);
      return this.set(this.state, this.state === 'unknown' ? 'waiting for probes' : this.lastReason);
    }
    return this.qualify(`${n - quorumFailing}/${n} targets answering`, dnsWords);
  }

  /**
   * up, slow or degraded, judged on loss and latency separately (policy fails over on down only):
   * loss (or DNS not answering, when configured to report only) is `degraded`; a line that answers
   * everything but slowly is `slow`, never loss.
   */
  private qualify(base: string, dnsWords: string): Verdict {
    const loss = this.lossPct();
    const lat = this.latencyMs();
    const lossy = loss !== null && loss >= this.opts.degradedLossPct && this.tracks.every((t) => t.samples >= 3);
    const slow = lat !== null && lat >= this.opts.slowLatencyMs;
    const parts = [
      dnsWords,
      base,
      lossy ? `loss ${loss.toFixed(0)}%` : '',
      slow ? `slow: round trip ${lat.toFixed(0)} ms (too slow at ${this.opts.slowLatencyMs} ms or more)` : '',
    ].filter(Boolean);
    const reason = parts.join('; ');
    if (dnsWords || lossy) return this.set('degraded', reason);
    if (slow) return this.set('slow', reason);
    return this.set('up', reason);
  }
}
