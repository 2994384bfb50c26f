import type { Static } from '@sinclair/typebox';
import type { UplinksReport, UplinkView } from '../../../contract/reports/index.js';
import type { Capability, Ctx, DrillStep, Health } from '../core/capability.js';
import type { TimerHandle } from '../../../common/clock.js';
import { describeError } from '../../../common/errors.js';
import type { UplinkState } from '../core/events.js';
import type { Logger } from '../../../common/log.js';
import { IpAdapter, type IfaceInfo, type RouteEntry } from '../platform/ip.js';
import { IpLinkMonitor, type LinkEvent, type LinkMonitor } from '../platform/netlink-monitor.js';
import { uplinkConfigWarnings } from './config-advice.js';
import type { UplinkSchema } from './config-schema.js';
import { UplinkDetector, type DnsHealth, type Verdict } from './detector.js';
import { leaseGateway, resolveNextHop, type NextHop, type NextHopSource } from './next-hop.js';
import { NetProber, type Prober, type ProbeResult } from './probes.js';

export type UplinkConfig = Static<typeof UplinkSchema>;

/** What failover and the status page see of one uplink: contract/reports/uplinks.ts. */
export type { UplinkView } from '../../../contract/reports/index.js';

interface Link {
  cfg: UplinkConfig;
  det: UplinkDetector;
  address: string | null;
  hop: NextHop;
  hopChecked: boolean;
  since: number;
  timers: TimerHandle[];
  inFlight: number[];
  /** The confirmation in progress (its next round's timer). */
  confirm: { timer: TimerHandle | undefined } | undefined;
  /** Confirmations allowed now (a token bucket: CONFIRM_BURST, refilled one per CONFIRM_EVERY_MS), and when it was last filled. */
  confirmTokens: number;
  tokensAt: number;
  /** When (monotonic) the uplink last answered any probe: an overdue probe after that is no alarm. */
  lastAnswerAt: number;
}

/**
 * At most one confirmation per uplink a second on average, so a lossy line does not double its
 * probe traffic; a burst of two, so one spent on a hiccup just before a blackhole does not delay it.
 */
const CONFIRM_EVERY_MS = 1000;
const CONFIRM_BURST = 2;

export interface UplinksDeps {
  prober?: Prober;
  monitor?: LinkMonitor;
}

/**
 * Measures every uplink all the time (active and standby alike): probes leave from the uplink's
 * own address so its `ip rule` sends them through its own table. Kernel carrier events count at
 * once; everything else is judged by UplinkDetector on a quorum of targets.
 * Publishes what it sees (`uplinks.snapshot`, on every state change and every second) and is never
 * called by the router: failover decides on the snapshots alone (as mwan3track publishes state
 * and mwan3 reads it). Proving a standby through its own table (the drill) is probing, so it is
 * here too.
 */
export class UplinksCapability implements Capability<UplinksReport> {
  readonly name = 'uplinks';
  private ctx!: Ctx;
  private log!: Logger;
  private links: Link[] = [];
  private refreshTimer: TimerHandle | undefined;
  private monitor: LinkMonitor | undefined;
  private prober!: Prober;
  private ip!: IpAdapter;
  private stopped = false;
  private publishTimer: TimerHandle | undefined;
  private offBus: (() => void) | undefined;
  /** The uplink the router says carries traffic (failover.switched): the drill proves the others. */
  private carrying: string | null = null;

  constructor(private readonly deps: UplinksDeps = {}) {}

  async start(ctx: Ctx): Promise<void> {
    this.ctx = ctx;
    this.log = ctx.log;
    this.stopped = false;
    this.prober = this.deps.prober ?? new NetProber(ctx.platform.commands);
    this.ip = new IpAdapter(ctx.platform.commands);
    const now = ctx.clock.now();
    this.links = ctx.config.uplinks.map((cfg) => ({
      cfg,
      det: new UplinkDetector(cfg.probes.targets.length, {
        ...cfg.probes,
        slowLatencyMs: cfg.probes.degradedLatencyMs ?? cfg.probes.slowLatencyMs,
        dnsTargets: cfg.probes.targets.map((t) => t.kind === 'dns'),
        label: cfg.label ?? cfg.name,
      }),
      address: null,
      hop: { gateway: cfg.gateway, source: cfg.gateway ? 'config' : 'unknown' },
      hopChecked: false,
      since: now,
      timers: [],
      inFlight: cfg.probes.targets.map(() => 0),
      confirm: undefined,
      confirmTokens: CONFIRM_BURST,
      tokensAt: 0,
      lastAnswerAt: -Infinity,
    }));
    this.carrying = null;
    this.offBus = ctx.bus.on('failover.switched', (e) => (this.carrying = e.to));
    if (!this.links.length) {
      this.log.info('no uplinks configured; nothing to measure');
      return;
    }
    for (const w of uplinkConfigWarnings(ctx.config)) this.log.warn(`config: ${w.message}`, { path: w.path });
    await this.refresh();
    // Addresses and next hops first: failover sets up each uplink's table and rule from these.
    this.publish();
    this.publishTimer = ctx.clock.setInterval(() => this.publish(), 1000);
    this.monitor = this.deps.monitor ?? (ctx.platform.privileged ? new IpLinkMonitor() : undefined);
    this.monitor?.start(
      (e) => this.onLinkEvent(e),
      (msg) => this.log.warn(msg),
    );
    this.refreshTimer = ctx.clock.setInterval(() => void this.refresh(), 2000);
    for (const link of this.links) this.startProbes(link);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.offBus?.();
    this.monitor?.stop();
    this.ctx?.clock.clearInterval(this.refreshTimer);
    this.ctx?.clock.clearInterval(this.publishTimer);
    for (const l of this.links) {
      for (const t of l.timers) this.ctx.clock.clearInterval(t);
      this.endConfirm(l);
    }
  }

  /** The snapshot on the bus (in-process only: several a second would swamp the MQTT outbox). */
  private publish(): void {
    if (this.stopped) return;
    this.published = this.decisionKey();
    this.ctx.bus.emit('uplinks.snapshot', { at: this.ctx.clock.now(), uplinks: this.views() }, { local: true });
  }

  views(): UplinkView[] {
    return this.links.map((l) => ({
      name: l.cfg.name,
      label: l.cfg.label ?? l.cfg.name,
      kind: l.cfg.kind,
      interface: l.cfg.interface,
      priority: l.cfg.priority,
      table: l.cfg.table,
      gateway: l.hop.gateway,
      nextHop: l.hop.source,
      address: l.address,
      carrier: l.det.hasCarrier,
      state: l.det.current,
      since: l.since,
      reason: l.det.reason,
      latencyMs: l.det.latencyMs(),
      lossPct: l.det.lossPct(),
      dns: l.det.dns(),
      dnsAnswering: l.det.dnsAnswering(),
    }));
  }

  health(): Health<UplinksReport> {
    const v = this.views();
    if (!v.length) return { status: 'disabled', summary: 'no uplinks configured', details: { uplinks: [], lines: [] } };
    const up = v.filter((u) => u.state === 'up' || u.state === 'slow' || u.state === 'degraded');
    const status = up.length === v.length && !v.some((u) => u.dns === 'failing') ? 'ok' : up.length ? 'degraded' : 'failed';
    const lines = v.map((u) => `${u.name} (${u.interface}): ${u.state} - ${u.reason}`);
    return { status, summary: `${up.length}/${v.length} uplinks usable`, details: { uplinks: v, lines } };
  }

  /** Staggered per-target timers: probes of one uplink never fire in a burst. */
  private startProbes(link: Link): void {
    const { intervalMs, targets } = link.cfg.probes;
    targets.forEach((_, i) => {
      const offset = Math.floor((intervalMs * i) / targets.length);
      const kick = this.ctx.clock.setTimeout(() => {
        if (this.stopped) return;
        const tick = () => this.fire(link, i, false);
        tick();
        link.timers.push(this.ctx.clock.setInterval(tick, intervalMs));
      }, offset);
      link.timers.push(kick);
    });
  }

  /** One probe of target `i` through the link's own address; `confirming`: part of a confirmation round. */
  private fire(link: Link, i: number, confirming: boolean): void {
    const { intervalMs, timeoutMs, lateMs, confirmMs, allFailRun, targets } = link.cfg.probes;
    // Regular probes overlap at most this much; a confirmation may add one round's worth more.
    const maxInFlight = Math.ceil(timeoutMs / intervalMs) + 1 + (confirming ? allFailRun : 0);
    if (this.stopped || !link.address || !link.det.hasCarrier || link.hop.source === 'unknown' || link.inFlight[i]! >= maxInFlight) return;
    link.inFlight[i]!++;
    const src = { address: link.address, iface: link.cfg.interface };
    // A target that was answering in time and now is not, well before the timeout, while nothing
    // else on the uplink has answered since this probe left: confirm at once.
    let answered = false;
    const sentAt = this.ctx.clock.monotonic();
    const overdue = confirmMs > 0 ? link.det.overdueAfter(i, confirmMs, timeoutMs) : null;
    const silent = () => !answered && link.lastAnswerAt < sentAt;
    const watch =
      overdue === null
        ? undefined
        : this.ctx.clock.setTimeout(() => {
            // Re-checked after the I/O already waiting is handled: on a busy box the answer may be
            // queued behind this timer (timers run before I/O in each turn of the event loop).
            if (!silent()) return;
            this.ctx.clock.setTimeout(() => {
              if (silent()) this.startConfirm(link, overdue);
            }, 0);
          }, overdue);
    // A late answer settles the sample it belongs to (slow, not lost), unless the uplink's
    // address changed meanwhile (the detector was reset: that sample is gone).
    let seq = -1;
    const late = {
      graceMs: lateMs,
      onLate: (r: ProbeResult) => {
        if (this.stopped || src.address !== link.address || seq < 0) return;
        if (r.ok) link.lastAnswerAt = this.ctx.clock.monotonic();
        this.apply(link, link.det.settle(i, seq, r.ok, r.rttMs));
      },
    };
    this.prober.probe(targets[i]!, src, timeoutMs, lateMs > 0 ? late : undefined).then(
      (r) => {
        answered = true;
        this.ctx.clock.clearTimeout(watch);
        link.inFlight[i]!--;
        if (this.stopped || src.address !== link.address) return;
        // The line answers: whatever made a probe overdue was not a blackhole.
        if (r.ok) {
          link.lastAnswerAt = this.ctx.clock.monotonic();
          this.endConfirm(link);
        }
        const v = link.det.record(i, r.ok, r.rttMs, r.pending === true);
        seq = link.det.lastSeq;
        this.apply(link, v);
      },
      (e: unknown) => {
        answered = true;
        this.ctx.clock.clearTimeout(watch);
        link.inFlight[i]!--;
        this.log.warn('probe threw', { uplink: link.cfg.name, ...describeError(e) });
      },
    );
  }

  /**
   * Confirmation: a probe is overdue, so probe every target again `allFailRun` times `confirmMs`
   * apart instead of waiting for their next intervals. A blackhole then fails every target's run
   * within about one timeout of its start; any answer ends it (a lost packet, a slower moment).
   * Targets already failing their run are skipped (they prove nothing more).
   */
  private startConfirm(link: Link, overdueMs: number): void {
    const now = this.ctx.clock.monotonic();
    link.confirmTokens = Math.min(CONFIRM_BURST, link.confirmTokens + (now - link.tokensAt) / CONFIRM_EVERY_MS);
    link.tokensAt = now;
    if (this.stopped || link.confirm || link.confirmTokens < 1 || link.det.current === 'down') return;
    link.confirmTokens -= 1;
    const { allFailRun, confirmMs, targets } = link.cfg.probes;
    const handle: NonNullable<Link['confirm']> = { timer: undefined };
    link.confirm = handle;
    let round = 0;
    const fireRound = () => {
      handle.timer = undefined;
      if (this.stopped || link.confirm !== handle) return;
      for (let i = 0; i < targets.length; i++) if (link.det.failRun(i) < allFailRun) this.fire(link, i, true);
      if (++round >= allFailRun) link.confirm = undefined;
      else handle.timer = this.ctx.clock.setTimeout(fireRound, confirmMs);
    };
    this.log.debug('probe overdue: confirming', { uplink: link.cfg.name, overdueMs });
    fireRound();
  }

  private endConfirm(link: Link): void {
    if (!link.confirm) return;
    this.ctx.clock.clearTimeout(link.confirm.timer);
    link.confirm = undefined;
  }

  /**
   * Contract: one step per uplink not carrying the practice's traffic (as failover last said),
   * proving it carries traffic through its own table: every target probed once from its address.
   */
  drillSteps(): DrillStep[] {
    return this.links
      .filter((l) => l.cfg.name !== this.carrying)
      .map((l) => ({
        name: `uplink ${l.cfg.name} carries traffic`,
        run: async () => {
          const { cfg } = l;
          if (!l.address) return { passed: false, detail: `${cfg.name} has no address` };
          const src = { address: l.address, iface: cfg.interface };
          const results = await Promise.all(cfg.probes.targets.map((t) => this.prober.probe(t, src, cfg.probes.timeoutMs * 2)));
          const ok = results.filter((r) => r.ok);
          const passed = ok.length > results.length / 2;
          const rtt = ok.length ? ok.reduce((a, r) => a + r.rttMs, 0) / ok.length : 0;
          return {
            passed,
            detail: `${ok.length}/${results.length} targets answered via ${cfg.interface} (table ${cfg.table})`,
            figures: { answered: ok.length, targets: results.length, meanRttMs: Math.round(rtt * 10) / 10 },
          };
        },
      }));
  }

  private onLinkEvent(e: LinkEvent): void {
    const link = this.links.find((l) => l.cfg.interface === e.ifname);
    if (!link) return;
    this.apply(link, link.det.setCarrier(e.carrier));
  }

  /** Addresses and carrier from `ip -j addr`; the safety net under the netlink monitor. */
  private async refresh(): Promise<void> {
    let ifaces: Map<string, IfaceInfo>;
    try {
      ifaces = await this.ip.interfaces();
    } catch (e) {
      this.log.warn('could not read interfaces; keeping last known', describeError(e));
      return;
    }
    if (this.stopped) return;
    const routes = await this.discoveryRoutes();
    for (const link of this.links) {
      const info = ifaces.get(link.cfg.interface);
      const address = info?.ipv4[0] ?? null;
      if (address !== link.address) {
        this.log.info(address ? 'uplink address' : 'uplink has no address', { uplink: link.cfg.name, address });
        link.address = address;
        if (!address) this.apply(link, link.det.markUnavailable(info ? 'no IPv4 address' : `interface ${link.cfg.interface} missing`));
      }
      const carrier = Boolean(info?.carrier);
      const why = info ? 'no carrier' : `interface ${link.cfg.interface} missing`;
      if (carrier !== link.det.hasCarrier || (!carrier && link.det.reason !== why)) this.apply(link, link.det.setCarrier(carrier, why), true);
      this.updateNextHop(link, info, routes);
    }
    if (this.publishTimer && this.changedSincePublished()) this.publish();
  }

  /** Default routes of every table, only when some uplink has no configured gateway. */
  private async discoveryRoutes(): Promise<RouteEntry[] | null> {
    if (this.links.every((l) => l.cfg.gateway)) return null;
    try {
      return await this.ip.allDefaultRoutes();
    } catch (e) {
      this.log.warn('could not read routes for next-hop discovery; keeping last known', describeError(e));
      return null;
    }
  }

  private updateNextHop(link: Link, info: IfaceInfo | undefined, routes: RouteEntry[] | null): void {
    if (link.cfg.gateway) return;
    const own = new Set(this.links.map((l) => String(l.cfg.table)));
    const lease = () => (info ? leaseGateway(info.name, info.ifindex, this.ctx.platform.hostPath) : undefined);
    // Routes unreadable this round: keep what we had rather than guess.
    const hop = routes === null && info && !info.pointToPoint ? link.hop : resolveNextHop(undefined, info, routes, own, lease, link.hop);
    const why = `no next hop on ${link.cfg.interface}`;
    // Say why it is not probed, also when the address arrived after the next hop was found missing.
    if (hop.source === 'unknown' && link.address && link.det.hasCarrier && link.det.reason !== why) this.apply(link, link.det.markUnavailable(why), true);
    if (link.hopChecked && hop.gateway === link.hop.gateway && hop.source === link.hop.source) return;
    const was = link.hopChecked ? link.hop : undefined;
    link.hop = hop;
    link.hopChecked = true;
    const fields = { uplink: link.cfg.name, interface: link.cfg.interface, gateway: hop.gateway ?? null, source: hop.source };
    if (hop.source === 'unknown') {
      this.log.error(
        `uplink ${link.cfg.name}: no next hop on ${link.cfg.interface} (a broadcast link: no DHCP default route or lease); set uplinks[].gateway`,
        fields,
      );
    } else if (!was || hop.gateway !== was.gateway || was.source === 'unknown') {
      this.log.info(
        hop.gateway
          ? `uplink ${link.cfg.name}: next hop ${hop.gateway} (${hop.source})`
          : `uplink ${link.cfg.name}: point-to-point, route bound to ${link.cfg.interface}`,
        fields,
      );
    }
  }

  private last = new Map<string, UplinkState>();
  private apply(link: Link, v: Verdict, quiet = false): void {
    const prev = this.last.get(link.cfg.name) ?? 'unknown';
    if (v.state === prev) {
      if (quiet) this.log.warn(`uplink ${link.cfg.name}: ${v.reason}`, { uplink: link.cfg.name });
      // DNS turning or an address arriving is news for the router too, without a state change.
      if (this.changedSincePublished()) this.publish();
      return;
    }
    this.last.set(link.cfg.name, v.state);
    const at = this.ctx.clock.now();
    link.since = at;
    const level = v.state === 'down' ? 'warn' : 'info';
    if (v.state === 'down') this.endConfirm(link);
    this.log[level](`uplink ${link.cfg.name} ${prev} -> ${v.state}`, { uplink: link.cfg.name, reason: v.reason });
    this.ctx.bus.emit('uplink.changed', { name: link.cfg.name, from: prev, to: v.state, reason: v.reason, at });
    // Straight after the change, so the router acts on it now and not at the next second.
    this.publish();
  }

  /** What the router decides on, per uplink (the figures alone wait for the next second). */
  private decisionKey(): string {
    return this.links
      .map((l) => `${l.det.current}|${l.det.dns()}|${l.det.dnsAnswering()}|${l.det.hasCarrier}|${l.address}|${l.hop.gateway}|${l.hop.source}`)
      .join(',');
  }

  private published = '';
  private changedSincePublished(): boolean {
    return this.decisionKey() !== this.published;
  }
}
