import { existsSync, rmSync, statSync } from 'node:fs';
import type { BackupReport } from '../../../contract/reports/index.js';
import './events.js';
import type { BackupSource, Capability, Ctx, DrillStep, Health } from '../core/capability.js';
import type { TimerHandle } from '../../../common/clock.js';
import type { FastifyPluginAsync } from 'fastify';
import type { BackupAccepted } from '../../../contract/operations.js';
import { AppError, describeError } from '../../../common/errors.js';
import { requireRole } from '../auth/index.js';
import { ulid } from '../core/ids.js';
import { nextLocalTimeAt } from '../../../common/local-time.js';
import { BackupHistory, type BackupRun } from './history.js';
import { backupPaths, backupTags, resticFor } from './paths.js';
import { parseSftpUrl, resticBackend, type Restic, type ResticProgress } from './restic.js';
import { stageBackup } from './stage.js';

/** The fleet alerts when the last good backup is older than this (docs/fleet.md); health agrees. */
export { BACKUP_STALE_MS } from '../../../contract/reports/backup.js';
import { BACKUP_STALE_MS } from '../../../contract/reports/backup.js';
import { fieldsOf } from '../../../common/fields.js';
/** Long timers drift and Node caps them: re-check the nightly slot at least hourly. */
const MAX_WAIT_MS = 3600_000;

export type BackupTrigger = 'capture' | 'nightly' | 'manual' | 'link';

/**
 * Encrypted off-box backup (restic). Runs after offline captures change state (debounced: a
 * morning of arrivals is one backup, not fifty) and nightly. It uses the primary uplink only,
 * unless a capture is pending: then a note that exists nowhere else is worth the 4G data.
 *
 * Which uplink is active comes from the bus (failover.switched) and failover's health, the same
 * way telemetry reads it; the pending-capture count from records' health.
 */
export class BackupCapability implements Capability<BackupReport> {
  readonly name = 'backup';
  private ctx: Ctx | undefined;
  private history!: BackupHistory;
  private restic!: Restic;
  private offs: (() => void)[] = [];
  private debounce: TimerHandle | undefined;
  private firstChangeAt: number | null = null;
  private nightly: TimerHandle | undefined;
  private nextNightly: number | null = null;
  private active: string | null = null;
  private running: Promise<BackupRun | null> | null = null;
  private runningTrigger: BackupTrigger | null = null;
  private again: BackupTrigger | null = null;
  private abort: AbortController | null = null;
  private progress: ResticProgress | null = null;
  private deferred: { trigger: BackupTrigger; reason: string } | null = null;
  private last: BackupRun | null = null;
  private lastOk: BackupRun | null = null;
  private keyProblem: string | null = null;
  /** Tests: the restic child's pid as soon as it starts, and each progress line. */
  onResticSpawn: ((pid: number) => void) | null = null;

  async start(ctx: Ctx): Promise<void> {
    this.ctx = ctx;
    // `surgery-edge backup now` (loopback API): registered even when backup is off, to say so clearly.
    ctx.web.register('backup', backupRoutes(this));
    if (!ctx.config.backup.enabled) return;
    const b = ctx.config.backup;
    if (!b.repository) throw new AppError('CONFIG_INVALID', 'backup.repository is not set');
    if (resticBackend(b.repository) === 'sftp' && !parseSftpUrl(b.repository)) throw new AppError('CONFIG_INVALID', 'backup.repository: unreadable SFTP URL');
    this.history = new BackupHistory(ctx.db);
    this.announceRestores();
    this.last = this.history.last();
    this.lastOk = this.history.last(true);
    this.restic = resticFor(ctx.config);
    this.keyProblem = checkKeyFile(backupPaths(ctx.config).keyFile);
    const fo = ctx.capabilities.get('failover')?.health().details;
    this.active = fo?.active ?? null;
    this.offs.push(
      ctx.bus.on('records.capture-state', () => this.captureChanged()),
      ctx.bus.on('failover.switched', (e) => {
        this.active = e.to;
        // Back on the primary link: run what was held back.
        if (this.deferred && this.linkAllows().ok) void this.runNow(this.deferred.trigger).catch(() => {});
      }),
    );
    this.scheduleNightly();
  }

  async stop(): Promise<void> {
    const ctx = this.ctx;
    if (!ctx) return;
    for (const off of this.offs.splice(0)) off();
    ctx.clock.clearTimeout(this.debounce);
    ctx.clock.clearTimeout(this.nightly);
    this.debounce = this.nightly = undefined;
    this.abort?.abort();
    await this.running?.catch(() => null);
  }

  /** One backup now, or the running one (a change during a run queues exactly one more). */
  runNow(trigger: BackupTrigger): Promise<BackupRun | null> {
    const ctx = this.need();
    if (this.running) {
      this.again = trigger;
      return this.running;
    }
    const link = this.linkAllows();
    if (!link.ok && trigger !== 'manual') {
      this.deferred = { trigger, reason: link.reason };
      ctx.log.info('backup held back', { trigger, reason: link.reason });
      return Promise.resolve(null);
    }
    this.deferred = null;
    this.runningTrigger = trigger;
    this.running = this.execute(trigger).finally(() => {
      this.running = null;
      this.runningTrigger = null;
      this.progress = null;
      const again = this.again;
      this.again = null;
      if (again && this.ctx && !this.abort?.signal.aborted) this.captureChanged(again);
    });
    return this.running;
  }

  /**
   * An operator's "back up now" (CLI `backup now`, MQTT command `backup-now`): the same link policy
   * as the scheduled runs unless `force`, and a clear error instead of a silent hold-back. Answers at
   * once; the outcome follows in health and the `backup.completed` event. `done` settles with the run.
   */
  request(o: { force: boolean; by: string }): BackupAccepted & { done: Promise<BackupRun | null> } {
    const ctx = this.ctx;
    if (!ctx?.config.backup.enabled) throw new AppError('UNAVAILABLE', 'off-box backup is not configured on this box (backup.enabled is false)');
    const key = checkKeyFile(backupPaths(ctx.config).keyFile);
    if (key) throw new AppError('UNAVAILABLE', `backup cannot run: ${key}`);
    const link = this.linkAllows();
    if (!link.ok && !o.force) {
      const over = this.active ?? 'current';
      const why = `${link.reason}. Backups use the primary link only, unless a capture is pending; force it to use the ${over} link anyway`;
      throw new AppError('CONFLICT', `backup not started: ${why}`);
    }
    const alreadyRunning = this.running !== null;
    ctx.log.info('backup requested', { by: o.by, force: o.force, link: link.reason, alreadyRunning });
    const done = this.runNow('manual');
    return { accepted: true, alreadyRunning, forced: o.force && !link.ok, link: link.ok ? link.reason : `forced: ${link.reason}`, done };
  }

  /** Primary uplink, or any uplink while a capture waits to be forwarded. */
  linkAllows(): { ok: boolean; reason: string } {
    const ctx = this.need();
    const primary = [...ctx.config.uplinks].sort((a, b) => a.priority - b.priority)[0]?.name ?? null;
    if (!primary || this.active === primary) return { ok: true, reason: 'primary link' };
    const rec = ctx.capabilities.get('records')?.health().details;
    if ((rec?.pendingCaptures ?? 0) > 0) return { ok: true, reason: 'capture pending: using the backup link' };
    return { ok: false, reason: `not on the primary link (${this.active ?? 'none'} active) and no capture pending` };
  }

  /** Tell the fleet (through telemetry's durable outbox) which box this one replaced, once. */
  private announceRestores(): void {
    const ctx = this.need();
    for (const r of this.history.unannouncedRestores()) {
      ctx.bus.emit('backup.restored', { fromDevice: r.fromDevice, snapshotId: r.snapshotId, restoredAt: r.at, at: ctx.clock.now() });
      this.history.markAnnounced(r.id, ctx.clock.now());
      ctx.log.info('restore announced to the fleet', { fromDevice: r.fromDevice, snapshot: r.snapshotId.slice(0, 8) });
    }
  }

  private captureChanged(trigger: BackupTrigger = 'capture'): void {
    const ctx = this.need();
    const now = ctx.clock.now();
    const d = ctx.config.backup.debounceMs;
    this.firstChangeAt ??= now;
    // Trailing debounce, but never postponed past 10 debounce periods by a steady trickle.
    if (this.debounce && now - this.firstChangeAt >= 10 * d) return;
    ctx.clock.clearTimeout(this.debounce);
    this.debounce = ctx.clock.setTimeout(() => {
      this.debounce = undefined;
      this.firstChangeAt = null;
      void this.runNow(trigger).catch(() => {});
    }, d);
  }

  private scheduleNightly(): void {
    const ctx = this.need();
    const now = ctx.clock.now();
    this.nextNightly = nextLocalTimeAt(now, -1, ctx.config.backup.nightlyAt);
    ctx.clock.clearTimeout(this.nightly);
    this.nightly = ctx.clock.setTimeout(
      () => {
        if (ctx.clock.now() >= (this.nextNightly ?? Infinity) - 1000) void this.runNow('nightly').catch(() => {});
        this.scheduleNightly();
      },
      Math.min(MAX_WAIT_MS, Math.max(1000, this.nextNightly - now)),
    );
  }

  private sources(): BackupSource[] {
    const ctx = this.need();
    return ctx.capabilities.list().flatMap((c) => (c !== this && c.backupSources ? safe(() => c.backupSources!()) : []));
  }

  private async execute(trigger: BackupTrigger): Promise<BackupRun> {
    const ctx = this.need();
    const b = ctx.config.backup;
    const p = backupPaths(ctx.config);
    const startedAt = ctx.clock.now();
    const t0 = ctx.clock.monotonic();
    this.abort = new AbortController();
    const run: BackupRun = { id: ulid(startedAt), startedAt, finishedAt: startedAt, trigger, ok: false, snapshotId: null, dataAdded: 0, error: null };
    try {
      this.keyProblem = checkKeyFile(p.keyFile);
      if (this.keyProblem) throw new AppError('UNAVAILABLE', this.keyProblem);
      const manifest = await stageBackup({
        dir: p.staging,
        db: ctx.db,
        configPath: ctx.control.configPath,
        sources: this.sources(),
        site: { deviceId: ctx.config.site.deviceId, odsCode: ctx.config.site.odsCode, practiceName: ctx.config.site.practiceName },
        version: ctx.version,
        trigger,
        now: startedAt,
      });
      const missing = Object.entries(manifest.sources)
        .filter(([, s]) => !s.ok)
        .map(([n, s]) => `${n}: ${s.error}`);
      await this.restic.ensureRepository();
      await this.restic.unlock();
      const summary = await this.restic.backup(p.staging, {
        host: ctx.config.site.deviceId,
        tags: backupTags(ctx.config, trigger),
        signal: this.abort.signal,
        timeoutMs: b.timeoutMs,
        onProgress: (pr) => (this.progress = pr),
        onSpawn: (pid) => this.onResticSpawn?.(pid),
      });
      if (trigger === 'nightly') {
        await this.restic
          .forget({ daily: b.keepDaily, weekly: b.keepWeekly, monthly: b.keepMonthly }, ctx.config.site.deviceId)
          .catch((e: unknown) => ctx.log.warn('backup retention (forget --prune) failed; snapshots kept', describeError(e)));
      }
      // A snapshot without the audit log and captures is kept, but is not a "good" backup.
      Object.assign(run, {
        ok: missing.length === 0,
        snapshotId: summary.snapshotId,
        dataAdded: summary.dataAdded,
        error: missing.length ? missing.join('; ') : null,
      });
    } catch (e) {
      run.error = describeError(e).message;
      ctx.log.warn('backup failed', { trigger, error: run.error });
    } finally {
      rmSync(p.staging, { recursive: true, force: true });
    }
    run.finishedAt = ctx.clock.now();
    this.history.save(run);
    this.last = run;
    if (run.ok) this.lastOk = run;
    ctx.bus.emit('backup.completed', {
      ok: run.ok,
      trigger,
      snapshotId: run.snapshotId,
      durationMs: Math.round(ctx.clock.monotonic() - t0),
      dataAdded: run.dataAdded,
      error: run.error,
      at: run.finishedAt,
    });
    return run;
  }

  health(): Health<BackupReport> {
    const ctx = this.ctx;
    if (!ctx || !ctx.config.backup.enabled) return { status: 'disabled', summary: 'Off-box backup not configured' };
    const now = ctx.clock.now();
    const lastOkAt = this.lastOk?.finishedAt ?? null;
    const stale = lastOkAt === null || now - lastOkAt > BACKUP_STALE_MS;
    const target = backupTarget(ctx.config.backup.repository);
    const details = {
      target,
      running: this.running !== null,
      runningTrigger: this.runningTrigger,
      progress: this.progress,
      lastSuccessAt: lastOkAt,
      lastSnapshotId: this.lastOk?.snapshotId ?? null,
      lastAttemptAt: this.last?.finishedAt ?? null,
      lastAttemptOk: this.last?.ok ?? null,
      lastError: this.last && !this.last.ok ? this.last.error : null,
      lastDataAdded: this.last?.dataAdded ?? null,
      deferred: this.deferred?.reason ?? null,
      nextNightlyAt: this.nextNightly,
      stale,
      keyProblem: this.keyProblem,
    };
    const when = lastOkAt === null ? 'never' : `${Math.round((now - lastOkAt) / 60_000)} min ago`;
    if (this.keyProblem) return { status: 'failed', summary: `Backup cannot run: ${this.keyProblem}`, details };
    if (this.running) return { status: 'ok', summary: `Backing up (${Math.round((this.progress?.percentDone ?? 0) * 100)}%)`, details };
    if (stale) return { status: 'degraded', summary: `Last good backup ${when}${details.lastError ? `: ${details.lastError}` : ''}`, details };
    return { status: 'ok', summary: `Last good backup ${when}`, details };
  }

  /** The weekly drill checks the backup is recent (it does not run one: that costs data and time). */
  drillSteps(): DrillStep[] {
    return [
      {
        name: 'off-box backup recency',
        run: async () => {
          const h = this.health();
          if (h.status === 'disabled') return { passed: true, detail: 'off-box backup not configured' };
          const d = h.details;
          if (!d) return { passed: false, detail: h.summary };
          const ageH = d.lastSuccessAt === null ? -1 : Math.round((this.need().clock.now() - d.lastSuccessAt) / 360_000) / 10;
          return { passed: !d.stale && h.status !== 'failed', detail: h.summary, figures: { ageHours: ageH } };
        },
      },
    ];
  }

  private need(): Ctx {
    if (!this.ctx) throw new AppError('UNAVAILABLE', 'backup capability not started');
    return this.ctx;
  }
}

/**
 * POST /api/actions/backup {force?, wait?}: admin only (the CLI uses the loopback token). With
 * wait it answers when the run ends (the CLI prints the outcome), else at once.
 */
function backupRoutes(cap: BackupCapability): FastifyPluginAsync {
  return async (app) => {
    app.post('/api/actions/backup', { preHandler: requireRole('admin') }, async (req, reply) => {
      const body = fieldsOf(req.body);
      const flag = (v: unknown) => v === true || v === 'true' || v === 'yes' || v === '1';
      const r = cap.request({ force: flag(body.force), by: req.user?.username ?? 'unknown' });
      const { done, ...accepted } = r;
      if (!flag(body.wait)) {
        done.catch(() => {});
        return reply.send(accepted);
      }
      const run = await done;
      return reply.send({ ...accepted, run });
    });
  };
}

/** The key file must exist, be non-trivial and readable by root only (it opens every backup). */
export function checkKeyFile(path: string): string | null {
  if (!existsSync(path)) return `no backup key at ${path} (install it from the practice bundle: docs/operator-guide.md)`;
  const st = statSync(path);
  if ((st.mode & 0o077) !== 0) return `backup key ${path} is readable by others (chmod 600)`;
  if (st.size < 32) return `backup key ${path} is too short`;
  return null;
}

/** Where backups go, without credentials: backend and host. */
export function backupTarget(url: string): string {
  const kind = resticBackend(url);
  if (kind === 'sftp') return `sftp ${parseSftpUrl(url)?.host ?? '?'}`;
  if (kind === 's3') return `s3 ${url.replace(/^s3:(https?:\/\/)?/, '').split('/')[0]}`;
  return kind;
}

function safe<T>(fn: () => T[]): T[] {
  try {
    return fn();
  } catch {
    return [];
  }
}
