import './events.js';
import type { TelephonyReport } from '../../../contract/reports/index.js';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import type { Capability, Ctx, Health } from '../core/capability.js';
import type { TimerHandle } from '../../../common/clock.js';
import { describeError } from '../../../common/errors.js';
import { writeFileAtomic } from '../core/fs.js';
import { NftAdapter } from '../platform/nft.js';
import type { TelephonyMode } from './events.js';
import { KamailioLog } from './kamailio-log.js';
import { kamailioConfig, type ResolvedPeers, type TelephonyConfig } from './kamailio-cfg.js';
import { Kamcmd, type KamailioState } from './kamcmd.js';
import { SipFirewall } from './sip-firewall.js';
import { VoiceQos } from './voice-qos.js';
import { realSpawner, Supervisor, type Spawner } from './supervisor.js';

export interface TelephonyOptions {
  /** How kamailio is started; tests wrap it in `ip netns exec`. */
  spawner?: Spawner;
  /** Host name resolution for the PBX/trunks (tests pin it). */
  resolve?: (host: string) => Promise<string>;
}

const MODE_WORD: Record<TelephonyMode, string> = {
  cloud: 'Phones normal (cloud PBX)',
  survivable: 'Phones on local backup: internal calls and 999 work',
  down: 'Phones: local SIP server not running',
  disabled: 'Survivable telephony off',
};

/**
 * Survivable telephony: writes kamailio's config from the practice config, runs and supervises
 * kamailio, reads its state over RPC (kamcmd) and reports the mode. The mode itself is decided in
 * kamailio per request (see kamailio-cfg.ts), from the dispatcher's OPTIONS probing of the PBX and
 * $shv(force_local), which this capability sets when failover reports that no uplink is left: that
 * is the fast path, with no OPTIONS timeouts to wait for.
 */
export class TelephonyCapability implements Capability<TelephonyReport> {
  readonly name = 'telephony';
  private ctx!: Ctx;
  private cfg!: TelephonyConfig;
  private sup: Supervisor | null = null;
  private kamcmd: Kamcmd | null = null;
  private firewall: SipFirewall | null = null;
  private voice: VoiceQos | null = null;
  private timer: TimerHandle | undefined;
  private offs: (() => void)[] = [];
  private peers: ResolvedPeers = { pbx: null, trunk: null, emergency: null };
  private mode: TelephonyMode = 'disabled';
  private since = 0;
  private state: KamailioState | null = null;
  private uplinkDown = false;
  private noActiveUplink = false;
  private readonly uplinkStates = new Map<string, string>();
  private problem: string | null = null;
  private firewallError: string | null = null;
  private polling = false;
  private again: string | undefined;
  private started = false;
  dir = '';

  constructor(private readonly opts: TelephonyOptions = {}) {}

  async start(ctx: Ctx): Promise<void> {
    this.ctx = ctx;
    this.cfg = ctx.config.telephony;
    this.since = ctx.clock.now();
    this.started = true;
    if (!this.cfg.enabled) return;
    // Not installed = disabled, never a start failure: the other capabilities go on as before.
    const v = await ctx.platform.commands.run(this.cfg.kamailioBinary, ['-v'], { allowFailure: true, timeoutMs: 5000 }).catch(() => null);
    if (!v || v.code !== 0) {
      this.problem = `${this.cfg.kamailioBinary} not installed (Debian package kamailio)`;
      ctx.log.warn('telephony disabled: kamailio not installed', { binary: this.cfg.kamailioBinary });
      return;
    }
    this.dir = join(ctx.config.paths.runDir, 'telephony');
    mkdirSync(join(this.dir, 'run'), { recursive: true, mode: 0o700 });
    this.peers = await this.resolvePeers();
    const paths = { ctlSocket: join(this.dir, 'ctl.sock'), dispatcherList: join(this.dir, 'dispatcher.list') };
    const files = kamailioConfig(this.cfg, this.peers, paths);
    const cfgFile = join(this.dir, 'kamailio.cfg');
    writeFileAtomic(cfgFile, files.cfg, 0o600);
    writeFileAtomic(paths.dispatcherList, files.dispatcher, 0o600);
    const check = await ctx.platform.commands.run(this.cfg.kamailioBinary, ['-c', '-f', cfgFile], { allowFailure: true, timeoutMs: 15_000 });
    if (check.code !== 0) {
      this.problem = 'generated kamailio config rejected by kamailio -c';
      ctx.log.error('kamailio config check failed', {
        output: check.stderr
          .split('\n')
          .filter((l) => /ERROR|CRITICAL/.test(l))
          .slice(0, 5)
          .join(' | '),
      });
      this.setMode('down', this.problem);
      return;
    }
    await this.applyFirewall();
    await this.applyVoiceQos();
    this.killStale(join(this.dir, 'kamailio.pid'));
    this.kamcmd = new Kamcmd(ctx.platform.commands, this.cfg.kamcmdBinary, paths.ctlSocket);
    const klog = new KamailioLog(ctx.log.child('kamailio'), ctx.clock);
    this.sup = new Supervisor({
      name: 'kamailio',
      cmd: this.cfg.kamailioBinary,
      // -DD: stay in the foreground so we see it exit; -E: log to stderr; -m/-M: Pi-sized memory.
      args: ['-DD', '-E', '-f', cfgFile, '-P', join(this.dir, 'kamailio.pid'), '-Y', join(this.dir, 'run'), '-m', '32', '-M', '8'],
      clock: ctx.clock,
      log: ctx.log,
      spawner: this.opts.spawner ?? realSpawner,
      backoff: this.cfg.restart,
      // kamailio's own problems only, redacted and rate-limited (kamailio-log.ts).
      onLine: (l) => klog.line(l),
    });
    this.sup.start();
    // No uplink left = survivable at once (no OPTIONS timeouts to wait for). Two signals: failover
    // switching to nothing, and every configured uplink reported down. The second matters because
    // when all links drop together failover may still name the last one it switched to (measured
    // in the lab: wan -> 4g, then 4g down 5 ms later, no further switch).
    this.offs.push(
      ctx.bus.on('failover.switched', (e) => {
        this.noActiveUplink = e.to === null;
        this.updateUplinkDown(e.to === null ? 'no uplink left (failover)' : `uplink ${e.to} active`);
      }),
      ctx.bus.on('uplink.changed', (e) => {
        this.uplinkStates.set(e.name, e.to);
        this.updateUplinkDown(`uplink ${e.name} ${e.to}`);
      }),
    );
    this.timer = ctx.clock.setInterval(() => void this.poll(), this.cfg.pollMs);
  }

  async stop(): Promise<void> {
    for (const off of this.offs.splice(0)) off();
    this.ctx?.clock.clearInterval(this.timer);
    this.timer = undefined;
    await this.sup?.stop();
    this.sup = null;
    if (this.firewall) await this.firewall.remove().catch(() => {});
    this.firewall = null;
    if (this.voice) await this.voice.remove().catch(() => {});
    this.voice = null;
  }

  health(): Health<TelephonyReport> {
    if (!this.started) return { status: 'starting', summary: 'starting' };
    const s = this.state;
    const details = {
      mode: this.mode,
      registered: s?.registered ?? 0,
      callsInProgress: s?.callsInProgress ?? 0,
      pbxReachable: s?.pbxReachable ?? false,
      since: this.since,
      uplinkDown: this.uplinkDown,
      restarts: this.sup?.restarts ?? 0,
      outsideCalls: this.outsideCalls(),
      emergencyRoute: this.emergencyRoute(),
      problem: this.problem ?? this.firewallError,
      lines: this.lines(),
    };
    if (!this.cfg.enabled || this.mode === 'disabled') return { status: 'disabled', summary: this.problem ?? MODE_WORD.disabled, details, since: this.since };
    const status = this.mode === 'cloud' ? (this.firewallError ? 'degraded' : 'ok') : this.mode === 'survivable' ? 'degraded' : 'failed';
    // Clinical safety: never tell reception 999 works from desk phones when there is no route for it.
    const summary =
      this.mode === 'survivable' && details.emergencyRoute === 'none'
        ? 'Phones on local backup: internal calls only; 999 NOT available from desk phones (no emergency trunk) - use a mobile'
        : MODE_WORD[this.mode];
    return { status, summary, details, since: this.since };
  }

  /** Where a call to an outside number goes now. */
  private outsideCalls(): 'pbx' | 'trunk' | 'none' {
    if (this.mode === 'cloud') return 'pbx';
    return this.peers.trunk ? 'trunk' : 'none';
  }

  /** Where 999/112 go now (kamailio-routes.ts emergencyRoutes). */
  private emergencyRoute(): 'pbx' | 'trunk' | 'pbx-then-trunk' | 'none' {
    const trunk = !!(this.peers.emergency ?? this.peers.trunk);
    if (this.mode === 'cloud') return trunk ? 'pbx-then-trunk' : 'pbx';
    // Survivable without any trunk: kamailio still tries the PBX, which is exactly what is gone.
    return trunk ? 'trunk' : 'none';
  }

  private lines(): string[] {
    const s = this.state;
    if (!s) return this.problem ? [this.problem] : [];
    const out = [
      `${s.registered} handset${s.registered === 1 ? '' : 's'} registered, ${s.callsInProgress} call${s.callsInProgress === 1 ? '' : 's'} in progress`,
    ];
    if (this.peers.pbx) out.push(`cloud PBX ${s.pbxReachable ? 'answering' : 'NOT answering'}${this.uplinkDown ? ' (no internet link)' : ''}`);
    out.push(this.peers.emergency || this.peers.trunk ? '999/112: emergency trunk ready' : '999/112: via the cloud PBX only (no emergency trunk configured)');
    if (this.firewallError) out.push(`SIP firewall not applied: ${this.firewallError}`);
    return out;
  }

  private updateUplinkDown(reason: string): void {
    const names = this.ctx.config.uplinks.map((u) => u.name);
    const allDown = names.length > 0 && names.every((n) => this.uplinkStates.get(n) === 'down');
    const down = this.noActiveUplink || allDown;
    if (down === this.uplinkDown) return;
    this.uplinkDown = down;
    void this.poll(down ? (this.noActiveUplink ? 'no uplink left (failover)' : 'no uplink left (every uplink down)') : reason);
  }

  /** Read kamailio's state, push force_local if it drifted (kamailio restarted), derive the mode. */
  async poll(reason?: string): Promise<void> {
    if (!this.kamcmd) return;
    if (this.polling) {
      // An uplink event during a poll must not wait for the next interval: poll again after.
      this.again = reason ?? this.again ?? 'state changed';
      return;
    }
    this.polling = true;
    try {
      let st = await this.kamcmd.state(!!this.peers.pbx);
      if (st.forceLocal !== this.uplinkDown) {
        await this.kamcmd.setForceLocal(this.uplinkDown);
        st = { ...st, forceLocal: this.uplinkDown };
      }
      this.state = st;
      const survivable = !st.pbxReachable || st.forceLocal;
      const why =
        reason ??
        (!this.peers.pbx
          ? 'no cloud PBX configured'
          : st.forceLocal
            ? 'no uplink left'
            : st.pbxReachable
              ? 'cloud PBX answers OPTIONS'
              : `cloud PBX not answering OPTIONS (${st.pbxFlags})`);
      this.setMode(survivable ? 'survivable' : 'cloud', why);
    } catch (e) {
      this.state = null;
      this.setMode('down', this.sup?.running ? `kamailio not answering RPC: ${describeError(e).message}` : 'kamailio not running (restarting)');
    } finally {
      this.polling = false;
    }
    if (this.again !== undefined) {
      const r = this.again;
      this.again = undefined;
      await this.poll(r);
    }
  }

  private setMode(to: TelephonyMode, reason: string): void {
    if (to === this.mode) return;
    const from = this.mode;
    this.mode = to;
    this.since = this.ctx.clock.now();
    const s = this.state;
    this.ctx.log[to === 'cloud' ? 'info' : 'warn']('telephony mode', { from, to, reason });
    this.ctx.bus.emit('telephony.mode', { from, to, reason, registered: s?.registered ?? 0, callsInProgress: s?.callsInProgress ?? 0, at: this.since });
  }

  private async resolvePeers(): Promise<ResolvedPeers> {
    const one = async (host: string): Promise<string | null> => {
      if (isIPv4(host)) return host;
      try {
        return await (this.opts.resolve ?? (async (h: string) => (await lookup(h, { family: 4 })).address))(host);
      } catch (e) {
        this.ctx.log.warn('telephony: could not resolve SIP peer (use an IP address so boot without DNS works)', { host, error: describeError(e).message });
        return null;
      }
    };
    const c = this.cfg;
    const pbx = c.pbx ? await one(c.pbx.host) : null;
    const trunk = c.trunk ? await one(c.trunk.host) : null;
    const em = c.emergency.trunk ? await one(c.emergency.trunk.host) : null;
    return {
      pbx: pbx && c.pbx ? { ip: pbx, port: c.pbx.port } : null,
      trunk: trunk && c.trunk ? { ip: trunk, port: c.trunk.port, outboundPattern: c.trunk.outboundPattern } : null,
      emergency: em && c.emergency.trunk ? { ip: em, port: c.emergency.trunk.port } : null,
    };
  }

  private async applyFirewall(): Promise<void> {
    if (!this.cfg.firewall.enabled) return;
    if (!this.ctx.platform.privileged) {
      this.firewallError = 'not root: SIP firewall not installed';
      return;
    }
    const fw = new SipFirewall(new NftAdapter(this.ctx.platform.commands));
    try {
      await fw.apply({
        lanInterface: this.cfg.lanInterface,
        port: this.cfg.port,
        packetsPerSecond: this.cfg.firewall.packetsPerSecond,
        burst: this.cfg.firewall.burst,
        trustedPeers: [this.peers.pbx?.ip, this.peers.trunk?.ip, this.peers.emergency?.ip].filter((x): x is string => !!x),
      });
      this.firewall = fw;
      this.firewallError = null;
    } catch (e) {
      this.firewallError = describeError(e).message;
      this.ctx.log.error('SIP firewall could not be applied', describeError(e));
    }
  }

  private async applyVoiceQos(): Promise<void> {
    const v = this.cfg.voice;
    if (!v.enabled) return;
    if (!this.ctx.platform.privileged) {
      this.firewallError = 'not root: voice shaper not installed';
      return;
    }
    const qos = new VoiceQos(this.ctx.platform.commands, new NftAdapter(this.ctx.platform.commands));
    try {
      await qos.apply({
        wanInterface: v.interface,
        lanInterface: this.cfg.lanInterface,
        uplinkKbit: v.uplinkKbit,
        downlinkKbit: v.downlinkKbit,
        voiceKbit: v.voiceKbit,
        sipPort: this.cfg.port,
        rtpPorts: v.rtpPorts,
      });
      this.voice = qos;
    } catch (e) {
      // Calls still work without it; say so on the status page rather than failing telephony.
      this.firewallError = `voice shaper not applied: ${describeError(e).message}`;
      this.ctx.log.error('voice shaper could not be applied', describeError(e));
      this.voice = qos;
    }
  }

  /** A kamailio left by a previous agent run (agent crashed) still holds the port: end its group. */
  private killStale(pidFile: string): void {
    if (!existsSync(pidFile)) return;
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 1) return;
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      if (comm !== 'kamailio') return;
      process.kill(-pid, 'SIGKILL');
      this.ctx.log.warn('killed a kamailio left by a previous run', { pid });
    } catch {
      /* gone already */
    }
  }
}
