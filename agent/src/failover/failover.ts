import { existsSync } from 'node:fs';
import type { FailoverReport, UplinkView } from '../../../contract/reports/index.js';
import type { Capability, Ctx, Health } from '../core/capability.js';
import type { UplinksSnapshot } from '../core/events.js';
import type { TimerHandle } from '../../../common/clock.js';
import { AppError, describeError } from '../../../common/errors.js';
import type { Logger } from '../../../common/log.js';
import { ConntrackAdapter } from '../platform/conntrack.js';
import { IpAdapter } from '../platform/ip.js';
import { NftAdapter } from '../platform/nft.js';
import { RoutingActuator } from './actuator.js';
import { DnsForwarder } from './dns-forwarder.js';
import { migrateHistory, outagesSince, recordSwitch, type Outage } from './history.js';
import { FailoverPolicy, type Decision } from './policy.js';

/**
 * Which uplink carries the practice's traffic, and making the kernel agree. Consumes the uplinks
 * tracker's published `uplinks.snapshot` (never calls into it, never probes: proving a standby is
 * the tracker's drill step), decides with FailoverPolicy, applies with RoutingActuator, announces
 * `failover.switched`. Decisions are re-evaluated on every snapshot and every second (hold-downs
 * expire); the kernel is reconciled on every switch and every `reconcileMs`.
 */
export class FailoverCapability implements Capability<FailoverReport> {
  readonly name = 'failover';
  private ctx!: Ctx;
  private log!: Logger;
  private policy!: FailoverPolicy;
  private actuator!: RoutingActuator;
  private timers: TimerHandle[] = [];
  private offBus: (() => void) | undefined;
  private reconciling: Promise<void> | undefined;
  private again = false;
  private lastReconcile: { at: number; errors: string[] } | undefined;
  private loggedErrors = new Set<string>();
  private lastAddrs = '';
  private forwarder: DnsForwarder | undefined;
  /** The latest published snapshot: all failover knows of the uplinks. */
  private views: UplinkView[] = [];

  private uplinks(): UplinkView[] {
    return this.views;
  }

  async start(ctx: Ctx): Promise<void> {
    this.ctx = ctx;
    this.log = ctx.log;
    const cfg = ctx.config.failover;
    this.policy = new FailoverPolicy(cfg);
    migrateHistory(ctx.db);
    this.views = [];
    this.lastAddrs = '';
    const ipFwd = ctx.platform.hostPath('/proc/sys/net/ipv4/ip_forward');
    this.actuator = new RoutingActuator(
      new IpAdapter(ctx.platform.commands),
      new NftAdapter(ctx.platform.commands),
      new ConntrackAdapter(ctx.platform.commands),
      ctx.log,
      { ruleBasePriority: cfg.ruleBasePriority, nftTable: cfg.nftTable, lanSubnet: cfg.lan.subnet, ...(existsSync(ipFwd) ? { ipForwardPath: ipFwd } : {}) },
    );
    if (!ctx.config.uplinks.length) {
      this.log.info('no uplinks configured; failover idle');
      return;
    }
    const fwd = cfg.dnsForwarder;
    if (fwd.enabled) {
      this.forwarder = new DnsForwarder(
        {
          uplinks: () => this.uplinks(),
          active: () => this.policy.active,
          upstreams: (u) =>
            fwd.upstreams.length
              ? fwd.upstreams
              : (ctx.config.uplinks.find((c) => c.name === u.name)?.probes.targets ?? []).filter((t) => t.kind === 'dns').map((t) => t.host),
          log: ctx.log,
        },
        fwd.timeoutMs,
      );
      await this.forwarder.start(fwd.listen, fwd.port);
    }
    // The tracker started first: its last snapshot (retained on the bus) is the state now.
    const current = ctx.bus.last('uplinks.snapshot');
    if (current) this.take(current, false);
    this.lastAddrs = addrKey(this.views);
    this.offBus = ctx.bus.on('uplinks.snapshot', (s) => {
      this.take(s, true);
      this.evaluate();
      // An address or next hop appeared or changed (4G bearer attached, DHCP renew): its rule and
      // table must follow now, not at the next periodic reconcile, or its probes cannot prove it.
      const addrs = addrKey(this.views);
      if (addrs !== this.lastAddrs && cfg.manageRouting) void this.reconcile();
      this.lastAddrs = addrs;
    });
    // Hold-downs and forced switches expire with time, snapshot or not.
    this.timers.push(ctx.clock.setInterval(() => this.evaluate(), 1000));
    if (cfg.manageRouting) {
      this.timers.push(ctx.clock.setInterval(() => void this.reconcile(), cfg.reconcileMs));
      // Tables and rules first: the standby's probes need them before anything is proven.
      await this.reconcile();
    }
    this.evaluate();
  }

  async stop(): Promise<void> {
    this.forwarder?.stop();
    this.offBus?.();
    for (const t of this.timers) this.ctx.clock.clearInterval(t);
    this.timers = [];
    await this.reconciling;
  }

  /** A snapshot: every state change in it is a transition for flap counting (`note` false: the one at start). */
  private take(s: UplinksSnapshot, note: boolean): void {
    const before = new Map(this.views.map((u) => [u.name, u.state]));
    this.views = s.uplinks;
    if (!note) return;
    for (const u of s.uplinks) if (before.get(u.name) !== u.state) this.policy.noteTransition(u.name, u.state, u.since);
  }

  /** Contract: force an uplink for durationMs (null clears); expires by itself. */
  force(uplink: string | null, durationMs: number): void {
    if (uplink !== null && !this.ctx.config.uplinks.some((u) => u.name === uplink)) throw new AppError('NOT_FOUND', `no uplink named ${uplink}`);
    this.policy.force(uplink, this.ctx.clock.now() + durationMs);
    this.log.info(uplink ? 'uplink forced' : 'force cleared', { uplink, durationMs });
    this.evaluate();
  }

  private evaluate(): void {
    const views = this.uplinks();
    let d: Decision;
    try {
      d = this.policy.evaluate(this.ctx.clock.now(), views);
    } catch (e) {
      this.log.error('policy failed; keeping current uplink', describeError(e));
      return;
    }
    if (!d.switched) return;
    const { from, to, kind } = d.switched;
    const at = this.ctx.clock.now();
    this.log.warn(`switched ${from ?? '(none)'} -> ${to}: ${d.reason}`, { from, to, kind });
    if (this.ctx.config.failover.manageRouting) {
      const next = views.find((u) => u.name === to);
      // The main route first, without waiting for a reconcile that may be running: every new LAN
      // connection waits for it (issue 20: a blackhole to the first new connection via 4G in <= 1 s).
      // A failure here is left to the reconcile, which retries it and reports it.
      const moved = next ? this.actuator.moveDefault(next).catch(() => undefined) : Promise.resolve();
      void moved
        .then(() => this.reconcile())
        .then(async () => {
          // After the route moved: drop the flows of the uplink we left so clients reconnect via the
          // new one (on failback too: phones' SIP flows move back off 4G at once; see docs/failover.md).
          const left = views.find((u) => u.name === from);
          if (!left) return;
          try {
            const n = await this.actuator.flush(left, kind !== 'failover');
            this.log.info(kind === 'failover' ? 'flushed failed uplink flows' : 'flushed LAN flows of the uplink left', {
              uplink: left.name,
              entries: n,
              kind,
            });
          } catch (e) {
            this.log.error('conntrack flush failed', { uplink: left.name, ...describeError(e) });
          }
        });
    }
    const preferred = [...views].sort((a, b) => a.priority - b.priority)[0];
    try {
      recordSwitch(this.ctx.db, { at, from, to, kind, primary: to !== null && to === preferred?.name });
    } catch (e) {
      this.log.warn('could not record the switch in the history', describeError(e));
    }
    this.ctx.bus.emit('failover.switched', { from, to, kind, reason: d.reason, at });
  }

  /** Outages (traffic off the preferred uplink) overlapping [dayStart, now], for the status page. */
  outages(dayStart: number): Outage[] {
    return outagesSince(this.ctx.db, dayStart, this.ctx.clock.now());
  }

  /** Serialised: one reconcile at a time, and one more if asked while running. */
  reconcile(): Promise<void> {
    if (this.reconciling) {
      this.again = true;
      return this.reconciling;
    }
    this.reconciling = (async () => {
      do {
        this.again = false;
        const res = await this.actuator.reconcile(this.uplinks(), this.policy.active);
        this.lastReconcile = { at: this.ctx.clock.now(), errors: res.errors };
        if (res.changes.length) this.log.info('kernel reconciled', { changes: res.changes });
        for (const e of res.errors) if (!this.loggedErrors.has(e)) this.log.error('routing change failed; keeping last good state', { error: e });
        this.loggedErrors = new Set(res.errors);
      } while (this.again);
    })().finally(() => (this.reconciling = undefined));
    return this.reconciling;
  }

  health(): Health<FailoverReport> {
    const views = this.uplinks();
    const p = this.policy;
    const now = this.ctx?.clock.now() ?? Date.now();
    const uplinks = views.map((u) => ({
      name: u.name,
      label: u.label,
      kind: u.kind,
      interface: u.interface,
      state: u.state,
      latencyMs: u.latencyMs === null ? null : Math.round(u.latencyMs * 10) / 10,
      lossPct: u.lossPct === null ? null : Math.round(u.lossPct),
      dns: u.dns,
      since: u.since,
      reason: u.reason,
    }));
    const active = p?.active ?? null;
    const lines: string[] = [];
    const ago = (t: number) => `${Math.round((now - t) / 1000)} s ago`;
    lines.push(active ? `active: ${active} since ${p.since ? ago(p.since) : '?'} - ${p.reason}` : `active: none - ${p?.reason ?? 'not started'}`);
    for (const u of uplinks) {
      const fig = [u.latencyMs !== null ? `${u.latencyMs} ms` : null, u.lossPct !== null ? `${u.lossPct}% loss` : null].filter(Boolean).join(', ');
      const label = u.label !== u.name ? ` "${u.label}"` : '';
      lines.push(
        `${u.name === active ? '*' : ' '} ${u.name}${label} (${u.kind}, ${u.interface}): ${u.state} ` +
          `for ${ago(u.since).replace(' ago', '')}${fig ? ` [${fig}]` : ''} - ${u.reason}`,
      );
    }
    if (p?.forced) lines.push(`forced to ${p.forced.uplink} for another ${Math.round((p.forced.until - now) / 1000)} s`);
    if (this.lastReconcile?.errors.length) lines.push(`routing errors: ${this.lastReconcile.errors.join('; ')}`);
    if (this.forwarder) {
      const f = this.forwarder.stats;
      lines.push(
        f.listening
          ? `LAN DNS forwarder on ${f.listening}: via ${f.via ?? '-'} (${f.answered} answered, ${f.failed} failed)`
          : `LAN DNS forwarder NOT running: ${f.error ?? 'stopped'}`,
      );
    }
    // The hold-down that matters is the preferred uplink's (the one traffic fails back to),
    // whatever order the config lists the uplinks in.
    const preferred = [...views].sort((a, b) => a.priority - b.priority)[0];
    const details = {
      active,
      since: p?.since ?? null,
      reason: p?.reason ?? 'not started',
      ...(p?.forced ? { forced: p.forced } : {}),
      failbackAt: p?.failbackAt ?? null,
      ...(this.forwarder ? { dnsForwarder: { ...this.forwarder.stats } } : {}),
      holdDownMs: p && preferred ? p.holdDownFor(preferred.name, now) : (this.ctx?.config.failover.holdDownMs ?? 60_000),
      uplinks,
      lines,
    };
    if (!this.ctx?.config.uplinks.length) return { status: 'disabled', summary: 'no uplinks configured', details };
    if (!views.length) return { status: 'failed', summary: 'no uplink state published yet (is the uplinks capability running?)', details };
    const act = views.find((u) => u.name === active);
    const primary = preferred!;
    if (!act) return { status: 'failed', summary: 'no working uplink yet', details };
    if (act.state === 'down') return { status: 'failed', summary: `all uplinks down (holding ${act.name})`, details, ...(p.since ? { since: p.since } : {}) };
    // Names not resolving through the active uplink is offline in practice for the PCs: never 'ok'.
    const dnsOut = act.dns === 'failing';
    const fwdDown = this.forwarder !== undefined && !this.forwarder.stats.listening;
    const status = act.name === primary.name && !this.lastReconcile?.errors.length && !dnsOut && !fwdDown ? 'ok' : 'degraded';
    const summary = `traffic on ${act.name} (${act.kind})${dnsOut ? `; DNS not answering on ${act.label}` : ''}`;
    return { status, summary, details, ...(p.since ? { since: p.since } : {}) };
  }
}

const addrKey = (views: readonly UplinkView[]) => views.map((u) => `${u.address ?? '-'}>${u.gateway ?? '-'}`).join(',');
