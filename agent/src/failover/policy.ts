import type { UplinkState } from '../core/events.js';

/**
 * The failover policy, pure: no I/O, no timers; time comes in as `now`. Rules:
 * - uplinks in priority order (lower number preferred);
 * - fail over only to an uplink proven usable (up, else degraded), and only when the active one is
 *   down/unknown; with nowhere better to go, stay put (never tear down the current route);
 * - damped failback: a preferred uplink must be `up` continuously for its hold-down, which doubles
 *   per flap (down transition in the last hour) up to a ceiling, and at most N failbacks an hour;
 * - force(uplink, until) overrides the choice until it expires (drills, operators).
 */
export interface PolicyUplink {
  name: string;
  priority: number;
  state: UplinkState;
  /** When the current state began (epoch ms). */
  since: number;
  /** DNS through this uplink (see uplinks/detector.ts); absent = not judged. */
  dns?: string;
  /** Its latest DNS probe answered; null/absent = no DNS target. */
  dnsAnswering?: boolean | null;
}

export interface PolicyOptions {
  holdDownMs: number;
  maxHoldDownMs: number;
  maxFailbacksPerHour: number;
  /**
   * At boot, how long to wait for a preferred uplink that is still being proven before starting on
   * a lesser one that proved itself first (else a probe-scheduling race puts the practice on 4G,
   * and getting back costs a full hold-down and one of the hour's failbacks). 0 = no wait.
   */
  bootGraceMs?: number;
  /** 'failover': an uplink whose DNS is not answering does not carry traffic while another resolves. */
  onDnsFailure?: 'failover' | 'report';
}

export type SwitchKind = 'failover' | 'failback' | 'initial' | 'forced' | 'none-available';

export interface Decision {
  active: string | null;
  /** Set when the active uplink changes on this evaluation. */
  switched?: { from: string | null; to: string | null; kind: SwitchKind };
  reason: string;
}

const HOUR = 3_600_000;
/** Carries traffic. `slow` is usable: a line slower than usual is never a reason to fail over. */
const usable = (s: UplinkState) => s === 'up' || s === 'slow' || s === 'degraded';
/** Failover candidates, best first: clean, then slow (no loss), then lossy. */
const RANK: Partial<Record<UplinkState, number>> = { up: 0, slow: 1, degraded: 2 };

export class FailoverPolicy {
  active: string | null = null;
  since: number | null = null;
  reason = 'no uplink proven up yet';
  forced: { uplink: string | null; until: number } | undefined;
  private readonly downs = new Map<string, number[]>();
  private failbacks: number[] = [];
  private firstEvalAt: number | undefined;

  constructor(private readonly opts: PolicyOptions) {}

  force(uplink: string | null, until: number): void {
    this.forced = uplink === null ? undefined : { uplink, until };
  }

  /** Feed every state transition (for flap counting). */
  noteTransition(name: string, to: UplinkState, at: number): void {
    if (to !== 'down') return;
    const list = (this.downs.get(name) ?? []).filter((t) => at - t < HOUR);
    list.push(at);
    this.downs.set(name, list);
  }

  /** Hold-down for an uplink now: base, doubled per flap in the last hour beyond the first, capped. */
  holdDownFor(name: string, now: number): number {
    const flaps = (this.downs.get(name) ?? []).filter((t) => now - t < HOUR).length;
    return Math.min(this.opts.maxHoldDownMs, this.opts.holdDownMs * 2 ** Math.max(0, flaps - 1));
  }

  evaluate(now: number, uplinks: readonly PolicyUplink[]): Decision {
    if (this.forced && now >= this.forced.until) this.forced = undefined;
    this.firstEvalAt ??= now;
    const byPrio = [...uplinks].sort((a, b) => a.priority - b.priority);
    const cur = byPrio.find((u) => u.name === this.active);
    const dnsMoves = (this.opts.onDnsFailure ?? 'failover') === 'failover';
    // DNS starting to fail moves traffic like a down does, so it counts as a flap like one (the
    // hold-down doubles for a primary whose DNS comes and goes).
    for (const u of uplinks) {
      const failing = u.dns === 'failing';
      if (dnsMoves && failing && !this.dnsFailing.has(u.name) && u.state !== 'down') this.noteTransition(u.name, 'down', now);
      if (failing) this.dnsFailing.add(u.name);
      else this.dnsFailing.delete(u.name);
    }
    /** Carries traffic: a usable state, and (when DNS failure moves traffic) DNS not failing. */
    const carries = (u: PolicyUplink) => usable(u.state) && !(dnsMoves && u.dns === 'failing');

    if (this.forced) {
      const f = byPrio.find((u) => u.name === this.forced!.uplink);
      if (f && f.state !== 'down') {
        if (this.active === f.name) return this.stay(`forced to ${f.name} until ${new Date(this.forced.until).toISOString()}`);
        return this.switchTo(now, f.name, 'forced', `forced to ${f.name} by operator/drill`);
      }
    }

    if (!cur || !carries(cur)) {
      // Leaving because DNS stopped answering: only go where DNS answers right now (with a resolver
      // outage everywhere, the standby's DNS is failing too, just not yet for long enough).
      const forDns = cur !== undefined && usable(cur.state);
      const candidate = byPrio
        .filter((u) => u.name !== this.active && carries(u) && !(forDns && u.dnsAnswering === false))
        .sort((a, b) => RANK[a.state]! - RANK[b.state]! || a.priority - b.priority)[0];
      const why = forDns ? `DNS not answering on ${cur.name}` : `${this.active} is ${cur?.state ?? 'gone'}`;
      if (!candidate) {
        if (this.active === null) return this.stay('no uplink proven up yet');
        return this.stay(`${why} and nothing better is up: staying put`);
      }
      if (this.active === null) {
        const pending = byPrio.find((u) => u.priority < candidate.priority && u.state === 'unknown');
        if (pending && now - this.firstEvalAt < (this.opts.bootGraceMs ?? 0))
          return this.stay(`${candidate.name} is ${candidate.state}; waiting up to ${s(this.opts.bootGraceMs!)} for ${pending.name} (preferred) to be proven`);
        return this.switchTo(now, candidate.name, 'initial', `${candidate.name} proven ${candidate.state}`);
      }
      return this.switchTo(now, candidate.name, 'failover', `${why} (${candidate.name} is ${candidate.state}${forDns ? ' and resolves' : ''})`);
    }

    // Active is usable: consider failing back to a preferred uplink.
    for (const u of byPrio) {
      if (u.priority >= cur.priority) break;
      if (u.dns === 'failing' && dnsMoves)
        return this.stay(`on ${cur.name}; DNS not answering on ${u.name}: no failback until it answers and ${u.name} has been clean for the hold-down`);
      if (u.state === 'degraded' || u.state === 'slow')
        return this.stay(
          `on ${cur.name}; ${u.name} answering but ${u.state === 'slow' ? 'slow' : 'not clean'}: no failback until it has been clean for the hold-down`,
        );
      if (u.state !== 'up') continue;
      const hold = this.holdDownFor(u.name, now);
      const clean = now - u.since;
      this.failbacks = this.failbacks.filter((t) => now - t < HOUR);
      // When failback can really happen: after the hold-down AND once the hourly cap has a free slot.
      const capFree = this.capFreeAt();
      const at = Math.max(u.since + hold, capFree ?? 0);
      if (clean < hold || (capFree !== null && now < capFree)) {
        const capped = capFree !== null && capFree > u.since + hold;
        const why = capped
          ? `${this.failbacks.length} failbacks in the last hour (max ${this.opts.maxFailbacksPerHour}), so not before ${hhmmss(at)}`
          : `hold-down ${s(hold)}, so at ${hhmmss(at)}`;
        return this.stay(`on ${cur.name}; ${u.name} clean for ${s(clean)}; failback if it stays clean: ${why}`, Number.isFinite(at) ? at : null);
      }
      this.failbacks.push(now);
      return this.switchTo(now, u.name, 'failback', `${u.name} clean for ${s(clean)} (hold-down ${s(hold)})`);
    }
    // Nothing pending. Say the present; the last switch's reason only as history, with its time
    // (left bare it reads as the current cause: issue 20).
    const best = byPrio[0]?.name === cur.name ? 'the preferred uplink' : 'the best usable uplink';
    const last = this.lastSwitch ? `; last switch ${hhmmss(this.lastSwitch.at)}: ${this.lastSwitch.reason}` : '';
    return this.stay(`on ${cur.name}, ${best}, ${cur.state}${last}`);
  }

  private lastSwitch: { at: number; reason: string } | undefined;
  private readonly dnsFailing = new Set<string>();
  /** When a failback to the preferred uplink is expected (if it stays clean); null when none is pending. */
  failbackAt: number | null = null;

  /** When the hourly failback cap next has a free slot; null when it has one now. */
  private capFreeAt(): number | null {
    const max = this.opts.maxFailbacksPerHour;
    if (this.failbacks.length < max) return null;
    if (max === 0) return Number.POSITIVE_INFINITY;
    const sorted = [...this.failbacks].sort((a, b) => a - b);
    return sorted[sorted.length - max]! + HOUR;
  }

  private stay(reason: string, failbackAt: number | null = null): Decision {
    this.reason = reason;
    this.failbackAt = failbackAt;
    return { active: this.active, reason };
  }

  private switchTo(now: number, to: string, kind: SwitchKind, reason: string): Decision {
    const from = this.active;
    this.active = to;
    this.since = now;
    this.reason = reason;
    this.failbackAt = null;
    this.lastSwitch = { at: now, reason };
    return { active: to, reason, switched: { from, to, kind } };
  }
}

const s = (ms: number) => `${Math.round(ms / 1000)} s`;
/** Clock time (UTC) for "when" lines; "never" for a cap of 0 failbacks an hour. */
const hhmmss = (t: number) => (Number.isFinite(t) ? `${new Date(t).toISOString().slice(11, 19)} UTC` : 'never (automatic failback is off)');
