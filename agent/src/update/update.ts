import './events.js';
import type { UpdateReport } from '../../../contract/reports/index.js';
import { uptime } from 'node:os';
import type { Capability, Ctx, Health } from '../core/capability.js';
import type { TimerHandle } from '../../../common/clock.js';
import { AppError, describeError } from '../../../common/errors.js';
import { ulid } from '../core/ids.js';
import type { BootControl, BootState } from '../platform/boot-control.js';
import { otherSlot, type Slot } from '../platform/grubenv.js';
import { judgeGate, unmetConditions } from './health-gate.js';
import { compareVersions, isVersion } from './manifest.js';
import { bootControlFor, runInstall, storeFor } from './setup.js';
import type { UpdateState, UpdateStateStore } from './state.js';
import { describeUpdate } from './summary.js';

export interface UpdateOptions {
  /** Milliseconds since the kernel booted (the health gate's clock; tests pass a fake). */
  uptimeMs?: () => number;
  /** Tests: a boot control on a fixture root instead of the one the config describes. */
  boot?: BootControl;
}

export interface UpdateRequest {
  url: string;
  version: string;
  /** Download even while traffic is on 4G or backup Wi-Fi (default: refused, and stopped on a switch to one). */
  allowCellular?: boolean;
}

/** A bundle fetched over the network (a path or file:// URL on the box costs no data). */
const remote = (url: string) => /^https?:\/\//i.test(url);

const GATE_EVERY_MS = 5_000;
const BUSY = new Set(['downloading', 'installing', 'installed', 'trial']);

/**
 * Signed A/B updates (docs/updates.md). `request()` (the MQTT `update` command) streams a bundle
 * into the inactive slot while verifying it and arms a boot-once; after the reboot this capability
 * runs the health gate on the trial slot and commits it, or rolls back to the previous slot.
 * Every step is reported as an `update.*` event, which telemetry forwards through the outbox.
 */
export class UpdateCapability implements Capability<UpdateReport> {
  readonly name = 'update';
  private ctx!: Ctx;
  private store!: UpdateStateStore;
  private boot!: BootControl;
  private bootState: BootState | null = null;
  private unavailable: string | null = null;
  private progress: { bytes: number; total: number } | null = null;
  private unmet: string[] = [];
  private okSince: number | null = null;
  private gateTimer: TimerHandle | undefined;
  private rebootTimer: TimerHandle | undefined;
  private abort: AbortController | null = null;
  /** Why the running install was stopped on purpose (a switch to 4G), reported instead of the abort. */
  private stopped: AppError | null = null;
  private running: Promise<void> | null = null;
  private current: UpdateRequest | null = null;
  /** Bytes still come over the network (the bundle streams while it is written; a delta's chunks after). */
  private fetching = false;
  /** The uplink carrying traffic (failover's report, then its switches); null: unknown or none. */
  private active: string | null = null;
  private offs: (() => void)[] = [];

  constructor(private readonly opts: UpdateOptions = {}) {}

  private uptimeMs(): number {
    return this.opts.uptimeMs ? this.opts.uptimeMs() : uptime() * 1000;
  }

  async start(ctx: Ctx): Promise<void> {
    this.ctx = ctx;
    this.store = storeFor(ctx.config);
    this.boot = this.opts.boot ?? bootControlFor(ctx.config, ctx.platform);
    this.unavailable = null;
    if (!ctx.config.update.enabled) this.unavailable = 'updates disabled in config';
    else if (this.boot.kind === 'none') this.unavailable = 'no A/B slots on this install (update it with apt)';
    if (this.unavailable) return;
    this.active = ctx.capabilities.get('failover')?.health().details?.active ?? null;
    this.offs.push(ctx.bus.on('failover.switched', (e) => this.switched(e.to)));
    try {
      this.bootState = this.boot.state();
    } catch (e) {
      this.unavailable = `boot environment unreadable: ${describeError(e).message}`;
      ctx.log.warn('updates unavailable', { reason: this.unavailable });
      return;
    }
    this.recover(this.bootState);
  }

  async stop(): Promise<void> {
    for (const off of this.offs.splice(0)) off();
    this.ctx?.clock.clearInterval(this.gateTimer);
    this.ctx?.clock.clearTimeout(this.rebootTimer);
    this.gateTimer = this.rebootTimer = undefined;
    this.abort?.abort();
    await this.running?.catch(() => {});
  }

  health(): Health<UpdateReport> {
    if (!this.ctx) return { status: 'starting', summary: 'starting' };
    const s = this.store.read();
    const d = describeUpdate(s, this.bootState, this.ctx.version, this.unavailable, this.progress, this.unmet);
    return { status: d.status, summary: d.summary, details: { ...d.details, lines: d.lines } };
  }

  /** The `update` command: checks what it can without the bundle, then installs in the background. */
  request(req: UpdateRequest): { accepted: true; id: string; version: string; slot: Slot } {
    if (this.unavailable) throw new AppError('UNAVAILABLE', this.unavailable);
    if (!isVersion(req.version)) throw new AppError('BAD_REQUEST', `not a version: ${JSON.stringify(req.version)}`);
    const s = this.store.read();
    const st = this.boot.state();
    if (st.trial) throw new AppError('CONFLICT', `slot ${st.booted} is on trial (version ${this.ctx.version}): wait for it to be committed or rolled back`);
    if (this.running || (BUSY.has(s.phase) && s.phase !== 'installed'))
      throw new AppError('CONFLICT', `an update is already in progress (${s.phase} ${s.version ?? ''})`.trim());
    if (compareVersions(req.version, this.ctx.version) <= 0) {
      throw new AppError('UPDATE_DOWNGRADE', `version ${req.version} is not newer than the running ${this.ctx.version}`, {
        requested: req.version,
        running: this.ctx.version,
      });
    }
    if (s.floorVersion && compareVersions(req.version, s.floorVersion) <= 0) {
      throw new AppError('UPDATE_DOWNGRADE', `version ${req.version} is not newer than ${s.floorVersion}, already committed here`);
    }
    const hold = remote(req.url) && !req.allowCellular ? this.backupLink() : null;
    if (hold) throw new AppError('UPDATE_ON_BACKUP_LINK', `update not started: ${hold}`, { uplink: this.active });
    const id = ulid(this.ctx.clock.now());
    const slot = otherSlot(st.booted);
    this.ctx.clock.clearTimeout(this.rebootTimer);
    this.store.write({
      ...s,
      phase: 'downloading',
      id,
      version: req.version,
      fromVersion: this.ctx.version,
      slot,
      bundlePath: req.url,
      error: null,
      at: this.ctx.clock.now(),
    });
    this.emitProgress(id, req.version, 'downloading');
    this.current = req;
    this.fetching = true;
    this.running = this.execute(id, req).finally(() => {
      this.running = null;
      this.abort = null;
      this.current = null;
      this.fetching = false;
      this.stopped = null;
    });
    return { accepted: true, id, version: req.version, slot };
  }

  /**
   * Why a network download must wait (null: it may run). Bundles are up to ~260 MB (a delta is far
   * less, but still counted against the practice's 4G allowance), so by default they come over the
   * wired line only: while traffic is on a 4G or backup Wi-Fi uplink the command is refused, and a
   * download under way is stopped when failover moves to one. `allowCellular` (a campaign that allows
   * 4G) lifts both. Unknown (no failover running) or no uplink at all: not held here.
   */
  private backupLink(): string | null {
    const up = this.ctx.config.uplinks.find((u) => u.name === this.active);
    if (!up || up.kind === 'wired') return null;
    const what = up.kind === 'cellular' ? '4G' : 'backup Wi-Fi';
    return `traffic is on ${what} (${up.name}); bundle downloads wait for the wired line unless the command allows 4G (allowCellular)`;
  }

  private switched(to: string | null): void {
    this.active = to;
    const req = this.current;
    if (!req || !this.abort || req.allowCellular || !remote(req.url)) return;
    if (!this.fetching) return; // everything fetched: being checked or armed, finish it
    const hold = this.backupLink();
    if (!hold) return;
    this.stopped = new AppError('UPDATE_ON_BACKUP_LINK', `download stopped: ${hold}`, { uplink: to });
    this.ctx.log.warn('update download stopped: failover moved traffic off the wired line', { uplink: to });
    this.abort.abort();
  }

  private emitProgress(id: string, version: string, phase: string, bytes?: number, total?: number): void {
    this.ctx.bus.emit('update.progress', {
      id,
      version,
      phase,
      ...(bytes !== undefined ? { bytes } : {}),
      ...(total !== undefined ? { total } : {}),
      at: this.ctx.clock.now(),
    });
  }

  private async execute(id: string, req: UpdateRequest): Promise<void> {
    const { ctx } = this;
    this.abort = new AbortController();
    let tenth = -1;
    try {
      ctx.log.info('update started', { id, version: req.version });
      const r = await runInstall({
        config: ctx.config,
        platform: ctx.platform,
        boot: this.boot,
        store: this.store,
        id,
        where: req.url,
        currentVersion: ctx.version,
        expectedVersion: req.version,
        now: ctx.clock.now,
        signal: this.abort.signal,
        onProgress: (step, done, total) => {
          if (step === 'delta-fetched' || step === 'verifying' || step === 'installed') this.fetching = false;
          if (step !== 'writing' || done === undefined || !total) {
            if (step !== 'downloading') this.emitProgress(id, req.version, step); // request() reported it
            return;
          }
          this.progress = { bytes: done, total };
          // One event per tenth: enough for a progress bar, cheap on 4G.
          const t = Math.floor((done * 10) / total);
          if (t !== tenth) {
            tenth = t;
            this.emitProgress(id, req.version, 'writing', done, total);
          }
        },
      });
      this.progress = null;
      this.bootState = this.boot.state();
      ctx.log.info('update installed; rebooting into it', { id, version: r.manifest.version, slot: r.slot });
      this.scheduleReboot(id, r.manifest.version);
    } catch (e) {
      this.progress = null;
      const d = describeError(this.stopped ?? e);
      const refused = d.code.startsWith('UPDATE_');
      this.store.update({ phase: refused ? 'refused' : 'failed', error: d }, ctx.clock.now());
      ctx.log.warn(refused ? 'update bundle refused' : 'update failed', { id, version: req.version, ...d });
      ctx.bus.emit(refused ? 'update.refused' : 'update.failed', { id, version: req.version, code: d.code, message: d.message, at: ctx.clock.now() });
    }
  }

  private scheduleReboot(id: string, version: string): void {
    this.ctx.clock.clearTimeout(this.rebootTimer);
    this.rebootTimer = this.ctx.clock.setTimeout(() => {
      this.emitProgress(id, version, 'rebooting');
      this.ctx.control.reboot(`update to ${version}`).catch((e: unknown) => this.ctx.log.error('reboot into the update failed', describeError(e)));
    }, this.ctx.config.update.rebootDelayMs);
  }

  /** After a restart or reboot: finish or undo whatever the last run left (docs/updates.md, recovery table). */
  private recover(st: BootState): void {
    const { ctx } = this;
    const s = this.store.read();
    const now = ctx.clock.now();
    if (st.trial) {
      if (s.phase !== 'trial') this.store.update({ phase: 'trial', slot: st.booted }, now);
      this.emitProgress(s.id ?? 'unknown', s.version ?? ctx.version, 'trial');
      this.startGate();
      return;
    }
    if (s.phase === 'downloading' || s.phase === 'installing') {
      // The install was cut short (power, kill, agent restart). The slot it wrote is not armed
      // unless the cut came between arming and recording; cancel that too: only 'installed' may be armed.
      if (st.armed) this.boot.disarm();
      this.fail(s, 'INTERNAL', `update interrupted while ${s.phase}; the device stays on ${ctx.version}`);
    } else if (s.phase === 'installed') {
      if (st.armed === s.slot) this.scheduleReboot(s.id ?? 'unknown', s.version ?? '');
      else this.rolledBack(s, 'the new slot was armed but the device came back on the old one');
    } else if (s.phase === 'trial') {
      if (s.slot === st.booted && st.active === st.booted) this.committed(s);
      else this.rolledBack(s, 'the trial boot restarted before it passed the health gate');
    }
    this.bootState = this.boot.state();
  }

  private fail(s: UpdateState, code: string, message: string): void {
    this.store.update({ phase: 'failed', error: { code, message } }, this.ctx.clock.now());
    this.ctx.bus.emit('update.failed', { id: s.id ?? 'unknown', version: s.version ?? '', code, message, at: this.ctx.clock.now() });
  }

  private rolledBack(s: UpdateState, reason: string): void {
    const at = this.ctx.clock.now();
    this.store.update({ phase: 'rolled-back', error: { code: 'ROLLED_BACK', message: reason } }, at);
    this.ctx.log.warn('update rolled back', { id: s.id, version: s.version, reason });
    this.ctx.bus.emit('update.rolled-back', { id: s.id ?? 'unknown', version: s.version ?? '', slot: this.boot.state().booted, reason, at });
  }

  private committed(s: UpdateState): void {
    const at = this.ctx.clock.now();
    const slot = this.boot.state().booted;
    const floor = s.floorVersion && compareVersions(s.floorVersion, this.ctx.version) > 0 ? s.floorVersion : this.ctx.version;
    this.store.update({ phase: 'committed', slot, floorVersion: floor, error: null }, at);
    this.ctx.log.info('update committed', { id: s.id, version: this.ctx.version, slot });
    this.ctx.bus.emit('update.committed', { id: s.id ?? 'unknown', version: this.ctx.version, slot, fromVersion: s.fromVersion, at });
  }

  private startGate(): void {
    this.okSince = null;
    this.gateTimer = this.ctx.clock.setInterval(() => this.evaluateGate(), GATE_EVERY_MS);
  }

  private evaluateGate(): void {
    const cfg = this.ctx.config.update.healthGate;
    const unmet = unmetConditions(this.ctx.capabilities.health(), cfg, this.ctx.config.telemetry.enabled);
    const now = this.uptimeMs();
    if (unmet.length) this.okSince = null;
    else this.okSince ??= now;
    this.unmet = unmet;
    const v = judgeGate(now, this.okSince, now, unmet, cfg);
    if (v.kind === 'wait') return;
    this.ctx.clock.clearInterval(this.gateTimer);
    this.gateTimer = undefined;
    const s = this.store.read();
    const st = this.boot.state();
    if (v.kind === 'pass') {
      // Commit in the boot environment first: a cut before the state write is finished at next start.
      this.boot.commit(st.booted);
      this.committed(s);
    } else {
      // The try flag was consumed by GRUB: rebooting returns to the committed slot. Disarm anyway
      // in case something re-armed it, record why, then reboot.
      this.boot.disarm();
      this.store.update({ phase: 'rolled-back', error: { code: 'HEALTH_GATE', message: v.reason } }, this.ctx.clock.now());
      this.ctx.log.warn('update failed its health gate; rolling back', { version: this.ctx.version, reason: v.reason });
      this.ctx.bus.emit('update.rolled-back', {
        id: s.id ?? 'unknown',
        version: this.ctx.version,
        slot: st.active,
        reason: v.reason,
        at: this.ctx.clock.now(),
      });
      this.ctx.control
        .reboot(`update ${this.ctx.version} failed its health gate`)
        .catch((e: unknown) => this.ctx.log.error('rollback reboot failed', describeError(e)));
    }
    this.bootState = this.boot.state();
    this.unmet = [];
  }
}
