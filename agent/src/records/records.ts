import { hhmm } from '../../../common/zoned-time.js';
import { rmSync } from 'node:fs';
import type { RecordsReport } from '../../../contract/reports/index.js';
import { dirname } from 'node:path';
import type { BackupSource, Capability, Ctx, DrillStep, Health } from '../core/capability.js';
import { stageRecords } from './backup-source.js';
import { AuditLog } from './audit.js';
import type { TimerHandle } from '../../../common/clock.js';
import { AppError, describeError } from '../../../common/errors.js';
import './events.js';
import { createKey, readRuntimeKey, shredFile, unwrapKey, writeRuntimeKey, keyFileExists } from './key.js';
import { buildSources, recordsPaths } from './sources.js';
import { RecordsStore } from './store.js';
import { runSync, type SyncProgress, type SyncResult } from './sync.js';
import { RecordsFrontDesk } from './viewer/index.js';
import { unlockPagePlugin } from './unlock-page.js';
import { DEFAULT_TCTI, tpmAvailable, TpmSealer } from '../platform/tpm.js';
import { clockTrust } from '../platform/clock-sync.js';

/**
 * The records capability: owns the encrypted store, its unlock, and the periodic sync. The viewer,
 * audit and offline capture (RecordsFrontDesk) bind to whichever store is open.
 *
 * Locked states: after a reboot the run dir (tmpfs) is empty, so the store stays closed until
 * `unlock(passphrase)` (status page) or `surgery-edge records unlock` (which writes the unlocked key
 * to the run dir; we poll for it). Sync, viewer and capture all wait while locked.
 */
export class RecordsCapability implements Capability<RecordsReport> {
  readonly name = 'records';
  private ctx: Ctx | undefined;
  private store_: RecordsStore | null = null;
  private frontDesk: RecordsFrontDesk | null = null;
  private syncTimer: TimerHandle | undefined;
  private retentionTimer: TimerHandle | undefined;
  private lockPoll: TimerHandle | undefined;
  private running: Promise<SyncResult | null> | null = null;
  private abort: AbortController | null = null;
  private progress: SyncProgress | null = null;
  private lastResult: SyncResult | null = null;
  private lastError: string | null = null;
  private startedAt = 0;

  /** The open store, or null while locked / disabled. */
  get store(): RecordsStore | null {
    return this.store_;
  }

  async start(ctx: Ctx): Promise<void> {
    this.ctx = ctx;
    this.startedAt = ctx.clock.now();
    if (!ctx.config.records.enabled) return;
    this.frontDesk = new RecordsFrontDesk(() => this.store_);
    this.frontDesk.start(ctx);
    const paths = recordsPaths(ctx.config);
    ctx.web.register(
      'records-key',
      unlockPagePlugin(
        {
          unlock: (p) => this.unlock(p),
          provision: (p) => this.provision(p),
          isLocked: () => this.store_ === null,
          isProvisioned: () => keyFileExists(paths.key),
        },
        ctx.clock,
      ),
    );
    this.tryRuntimeKey();
    if (!this.store_) await this.tryTpm();
    // CLI `records unlock` hands the key over through the run dir; poll only while locked.
    this.lockPoll = ctx.clock.setInterval(() => {
      if (!this.store_) this.tryRuntimeKey();
    }, 3_000);
    this.syncTimer = ctx.clock.setInterval(() => void this.syncNow().catch(() => {}), ctx.config.records.dayListIntervalMs);
    this.retentionTimer = ctx.clock.setInterval(() => this.applyRetention(), 3600_000);
    if (this.store_) ctx.clock.setTimeout(() => void this.syncNow().catch(() => {}), 1_000);
  }

  async stop(): Promise<void> {
    if (!this.ctx) return;
    this.ctx.clock.clearInterval(this.syncTimer);
    this.ctx.clock.clearInterval(this.retentionTimer);
    this.ctx.clock.clearInterval(this.lockPoll);
    this.abort?.abort();
    await this.running?.catch(() => null);
    await this.frontDesk?.stop();
    this.store_?.close();
    this.store_ = null;
  }

  /** Open the cache with the operator passphrase (status page). UNAUTHORIZED when wrong. */
  async unlock(passphrase: string): Promise<void> {
    const ctx = this.need();
    // Re-sealed too: after a legitimate software update the PCRs changed and the old sealed copy failed.
    await this.adoptKey(await unwrapKey(recordsPaths(ctx.config).key, passphrase));
    ctx.log.info('records cache unlocked');
    void this.syncNow().catch(() => {});
  }

  /** First-time provisioning: create and wrap a new data key, then open (empty) cache. */
  async provision(passphrase: string): Promise<void> {
    await this.adoptKey(await createKey(recordsPaths(this.need().config).key, passphrase));
  }

  /** Open the cache with a key, hand it to the RAM-backed run dir (CLI, restarts) and seal it to the TPM. */
  private async adoptKey(key: Buffer): Promise<void> {
    this.open(key);
    writeRuntimeKey(recordsPaths(this.need().config).runtimeKey, key);
    await this.sealToTpm(key);
  }

  /** Close the store and forget the key (it stays wrapped on disk). */
  lock(): void {
    const ctx = this.need();
    this.abort?.abort();
    this.store_?.close();
    this.store_ = null;
    rmSync(recordsPaths(ctx.config).runtimeKey, { force: true });
  }

  /** De-provisioning: destroy the wrapped key and the database. The data is unrecoverable. */
  destroyKey(): void {
    const ctx = this.need();
    this.lock();
    const p = recordsPaths(ctx.config);
    shredFile(p.key);
    this.sealer().destroy();
    for (const f of [p.db, `${p.db}-wal`, `${p.db}-shm`]) rmSync(f, { force: true });
  }

  /** One sync now (or the one already running). */
  syncNow(): Promise<SyncResult | null> {
    if (this.running) return this.running;
    const ctx = this.need();
    const store = this.store_;
    if (!store) return Promise.resolve(null);
    this.abort = new AbortController();
    const r = ctx.config.records;
    this.running = (async () => {
      try {
        const { dayList, summaries } = buildSources(ctx.config, ctx.version);
        const res = await runSync(store, dayList, summaries, {
          timeZone: r.timeZone,
          workingDays: r.workingDays,
          concurrency: r.concurrency,
          summaryMaxAgeMs: r.summaryMaxAgeMs,
          retries: r.retries,
          clock: ctx.clock,
          log: ctx.log.child('records'),
          signal: this.abort!.signal,
          onProgress: (p) => (this.progress = p),
        });
        this.lastResult = res;
        this.lastError = res.lastError;
        ctx.bus.emit('records.synced', {
          patients: res.patients,
          appointments: res.appointments,
          asOf: res.asOf,
          durationMs: res.durationMs,
          errors: res.errors + res.dayListErrors.length,
        });
        return res;
      } catch (e) {
        this.lastError = describeError(e).message;
        ctx.log.warn('records sync failed', describeError(e));
        return null;
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  health(): Health<RecordsReport> {
    const ctx = this.ctx;
    if (!ctx || !ctx.config.records.enabled) return { status: 'disabled', summary: 'Records cache disabled' };
    const p = recordsPaths(ctx.config);
    const locked = this.store_ === null;
    const meta = this.safeMeta();
    const now = ctx.clock.now();
    const stale = meta.asOf === null || now - meta.asOf > ctx.config.records.staleAfterMs;
    const asOfText = meta.asOf === null ? 'never' : hhmm(meta.asOf, ctx.config.records.timeZone);
    const clock = clockTrust({ hostPath: ctx.platform.hostPath, now });
    const sync = { running: this.running !== null, done: this.progress?.done ?? 0, total: this.progress?.total ?? 0, lastError: this.lastError };
    const lines = [
      locked
        ? keyFileExists(p.key)
          ? 'cache LOCKED: enter the passphrase (status page or `surgery-edge records unlock`)'
          : 'no records key yet: an admin creates it (set-up wizard, or the page /records/key)'
        : `as of ${asOfText}${stale ? ' (STALE)' : ''}: ${meta.patients} patients, ${meta.appointments} appointments`,
      ...(clock === 'wrong' ? ['CLOCK WRONG: the appliance time is earlier than this software; times and "as of" are wrong'] : []),
      ...(clock === 'unconfirmed' ? ['clock not confirmed by NTP since start: times and "as of" may be wrong'] : []),
      ...(sync.running ? [`sync ${this.progress?.phase ?? ''} ${sync.done}/${sync.total}`] : []),
      ...(this.lastError ? [`last error: ${this.lastError}`] : []),
      ...(this.tpmUsable()
        ? [
            this.sealer().isSealed()
              ? 'TPM: key sealed (unlocks itself after a reboot if the boot chain is unchanged)'
              : 'TPM present: key not sealed yet (enter the passphrase once)',
          ]
        : []),
    ];
    const details = {
      asOf: meta.asOf,
      stale,
      patients: meta.patients,
      appointments: meta.appointments,
      locked,
      provisioned: keyFileExists(p.key),
      sync,
      clock,
      pendingCaptures: this.frontDesk?.pendingCaptures() ?? 0,
      lines,
    };
    const status = locked || stale ? 'degraded' : 'ok';
    const summary = locked ? 'Records cache locked' : stale ? `Records cache stale (as of ${asOfText})` : `Records cache current (as of ${asOfText})`;
    return { status, summary, details, since: this.startedAt };
  }

  /** Hourly: the retention limits of records.retention (cache backstop and audit purge). */
  applyRetention(): { patients: number; appointments: number; auditPurged: number } | null {
    const ctx = this.need();
    const store = this.store_;
    if (!store) return null;
    const r = ctx.config.records.retention;
    const now = ctx.clock.now();
    try {
      const cache = store.purgeFetchedBefore(now - r.cacheMaxAgeHours * 3600_000);
      const audit = AuditLog.open(store.db, () => ctx.clock.now()).purgeBefore(now - r.auditDays * 86_400_000);
      if (cache.patients || cache.appointments || audit.purged) ctx.log.info('retention purge', { ...cache, auditPurged: audit.purged });
      return { ...cache, auditPurged: audit.purged };
    } catch (e) {
      ctx.log.warn('retention purge failed', describeError(e));
      return null;
    }
  }

  /** The audit log, captures and wrapped key for the off-box backup (cache contents excluded: see backup-source.ts). */
  backupSources(): BackupSource[] {
    const ctx = this.ctx;
    if (!ctx || !ctx.config.records.enabled) return [];
    return [
      {
        name: 'records',
        stage: async (dir) => {
          const store = this.store_;
          const p = recordsPaths(ctx.config);
          const key = readRuntimeKey(p.runtimeKey);
          if (!store || !key) throw new AppError('UNAVAILABLE', 'records cache locked: audit log and captures not in this backup');
          return stageRecords(store, key, p.key, dir);
        },
      },
    ];
  }

  drillSteps(): DrillStep[] {
    return [
      {
        name: 'records cache freshness',
        run: async () => {
          const h = this.health();
          const d = (h.details ?? {}) as { asOf?: number | null; locked?: boolean; patients?: number; stale?: boolean };
          if (h.status === 'disabled') return { passed: true, detail: 'records cache disabled' };
          const ageMin = d.asOf ? Math.round((this.need().clock.now() - d.asOf) / 60_000) : -1;
          const passed = !d.locked && !d.stale;
          return {
            passed,
            detail: d.locked ? 'cache locked' : d.asOf ? `last complete sync ${ageMin} min ago, ${d.patients} patients` : 'never synced',
            figures: { ageMinutes: ageMin, patients: d.patients ?? 0 },
          };
        },
      },
    ];
  }

  private safeMeta(): { asOf: number | null; patients: number; appointments: number } {
    try {
      return this.store_ ? this.store_.meta() : { asOf: null, patients: 0, appointments: 0 };
    } catch {
      return { asOf: null, patients: 0, appointments: 0 };
    }
  }

  private tpmUsable(): boolean {
    const r = this.need().config.records;
    return r.tpm === 'auto' && tpmAvailable(r.tpmTcti, this.need().platform.hostPath);
  }

  private sealer(): TpmSealer {
    const ctx = this.need();
    const r = ctx.config.records;
    return new TpmSealer({
      runner: ctx.platform.commands,
      blobDir: dirname(recordsPaths(ctx.config).key),
      workDir: ctx.config.paths.runDir,
      tcti: r.tpmTcti || DEFAULT_TCTI,
      pcrs: r.tpmPcrs,
    });
  }

  private async sealToTpm(key: Buffer): Promise<void> {
    if (!this.tpmUsable()) return;
    try {
      await this.sealer().seal(key);
      this.need().log.info('records key sealed to the TPM');
    } catch (e) {
      this.need().log.warn('could not seal the records key to the TPM; passphrase unlock only', describeError(e));
    }
  }

  /** After a reboot: unseal the TPM copy when the boot chain still matches the policy. */
  private async tryTpm(): Promise<void> {
    if (!this.tpmUsable() || !this.sealer().isSealed()) return;
    const ctx = this.need();
    try {
      const key = await this.sealer().unseal();
      this.open(key);
      writeRuntimeKey(recordsPaths(ctx.config).runtimeKey, key);
      ctx.log.info('records cache unlocked by the TPM');
    } catch (e) {
      ctx.log.warn('TPM did not release the records key (boot chain changed?); passphrase needed', describeError(e));
    }
  }

  private tryRuntimeKey(): void {
    const ctx = this.need();
    const key = readRuntimeKey(recordsPaths(ctx.config).runtimeKey);
    if (!key) return;
    try {
      this.open(key);
      ctx.log.info('records cache unlocked from run dir');
      // A key created by the set-up wizard arrives this way: seal it once, so reboots unlock by themselves.
      if (this.tpmUsable() && !this.sealer().isSealed()) void this.sealToTpm(key);
      void this.syncNow().catch(() => {});
    } catch (e) {
      ctx.log.warn('run-dir key does not open the records cache', describeError(e));
    }
  }

  private open(key: Buffer): void {
    const ctx = this.need();
    if (this.store_) return;
    this.store_ = RecordsStore.open(recordsPaths(ctx.config).db, { key });
  }

  private need(): Ctx {
    if (!this.ctx) throw new AppError('UNAVAILABLE', 'records capability not started');
    return this.ctx;
  }
}
