import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TimerHandle } from '../../../common/clock.js';
import { describeError } from '../../../common/errors.js';
import type { Component, ComponentHealth, FleetCtx } from '../ctx.js';
import type { SqlDriver } from '../store/driver.js';
import { crlPathFor, revokedCertificates, writeCrl } from './crl.js';
import { CONTROL_TOPIC, deviceUsername } from './dynsec.js';

const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const EVERY_MS = 5_000;

export interface ReplacementRow {
  event_id: string;
  old_id: string;
  new_id: string;
  practice: string | null;
  at: number;
  snapshot: string | null;
  outcome: 'revoked' | 'refused';
  detail: string;
}

/** The marker that keeps a revoked device out of the broker's registration (dynsec.ts enrolledDevices). */
export const revokedMarker = (issuedDir: string, id: string): string => join(issuedDir, `${id}.revoked`);

/**
 * A replacement box revokes the box it replaces. After `surgery-edge backup restore` the new box
 * sends the event `backup.restored {fromDevice, snapshotId}` (through its durable outbox). When the
 * fleet's own records put both boxes in the same practice, the old identity is revoked:
 *
 *   - the old device is marked replaced (table device_replacements; its alerts stop),
 *   - its client is disabled in the dynamic-security broker (`disableClient`: the plugin kicks a
 *     live session and refuses every later connect with that certificate),
 *   - `<claim.issuedDir>/<id>.revoked` keeps it out of the broker's registration after a restart
 *     (the embedded broker rebuilds its device list from that folder),
 *   - the CRL beside that folder (`crl.pem`, signed with the claim CA key) lists its certificate, so
 *     the broker refuses it at the TLS handshake once it has re-read the CRL (crl.ts says why the
 *     plugin alone does not refuse the connection).
 *
 * A box cannot revoke another practice's box, nor itself; every decision is in the fleet audit log.
 * Events are read from the events table, so it works with several fleet instances and survives
 * restarts (each event is decided once: the event id is the primary key).
 */
export class Replacements implements Component {
  readonly name = 'replacements';
  private ctx!: FleetCtx;
  private timer: TimerHandle | undefined;
  private running: Promise<ReplacementRow[]> | undefined;
  private ready: Promise<void> | undefined;
  revoked = 0;
  refused = 0;
  /** After the CRL changed: the embedded broker re-reads it (SIGHUP); an ICB's own broker reloads by its path unit. */
  onRevoked: (() => void) | undefined;
  private lastError: string | null = null;

  async start(ctx: FleetCtx): Promise<void> {
    this.ctx = ctx;
    await this.ensure();
    this.timer = ctx.clock.setInterval(() => void this.check().catch(() => {}), EVERY_MS);
  }

  async stop(): Promise<void> {
    this.ctx.clock.clearInterval(this.timer);
    await this.running?.catch(() => {});
  }

  health(): ComponentHealth {
    return {
      status: this.lastError ? 'degraded' : 'ok',
      summary: this.lastError ? `revocation failed: ${this.lastError}` : `${this.revoked} replaced devices revoked, ${this.refused} refused`,
      details: { revoked: this.revoked, refused: this.refused },
    };
  }

  private get d(): SqlDriver {
    return this.ctx.store.driver;
  }

  private ensure(): Promise<void> {
    // IF NOT EXISTS rather than a numbered migration, as claim-store.ts, so it merges beside other work on migrations.ts.
    this.ready ??= this.d.exec(`
CREATE TABLE IF NOT EXISTS device_replacements (
  event_id TEXT PRIMARY KEY, old_id TEXT NOT NULL, new_id TEXT NOT NULL, practice TEXT, at BIGINT NOT NULL, snapshot TEXT,
  outcome TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS device_replacements_old ON device_replacements (old_id, outcome);
`);
    return this.ready;
  }

  /** Devices replaced by another box (their alerts are not raised). */
  async replacedIds(): Promise<Set<string>> {
    await this.ensure();
    return new Set((await this.d.all<{ old_id: string }>("SELECT old_id FROM device_replacements WHERE outcome = 'revoked'")).map((r) => r.old_id));
  }

  async list(): Promise<ReplacementRow[]> {
    await this.ensure();
    return this.d.all<ReplacementRow>('SELECT * FROM device_replacements ORDER BY at');
  }

  /** Decide every `backup.restored` event not yet decided; returns the decisions made now. */
  check(): Promise<ReplacementRow[]> {
    this.running ??= this.run()
      .catch((e: unknown) => {
        this.lastError = describeError(e).message;
        this.ctx.log.error('replacement check failed', describeError(e));
        return [];
      })
      .finally(() => (this.running = undefined));
    return this.running;
  }

  private async run(): Promise<ReplacementRow[]> {
    await this.ensure();
    const events = await this.d.all<{ id: string; device_id: string; at: number; payload: string | null }>(
      `SELECT id, device_id, at, payload FROM events
       WHERE name = 'backup.restored' AND id NOT IN (SELECT event_id FROM device_replacements) ORDER BY at LIMIT 100`,
    );
    const out: ReplacementRow[] = [];
    for (const e of events) out.push(await this.decide(e));
    if (events.length) this.lastError = null;
    return out;
  }

  private async decide(e: { id: string; device_id: string; at: number; payload: string | null }): Promise<ReplacementRow> {
    let p: { fromDevice?: unknown; snapshotId?: unknown } = {};
    try {
      p = (JSON.parse(e.payload ?? 'null') as typeof p) ?? {};
    } catch {
      /* refused below */
    }
    const oldId = typeof p.fromDevice === 'string' ? p.fromDevice.slice(0, 64) : '';
    const snapshot = typeof p.snapshotId === 'string' ? p.snapshotId.slice(0, 64) : null;
    const row: ReplacementRow = {
      event_id: e.id,
      old_id: oldId || '?',
      new_id: e.device_id,
      practice: null,
      at: this.ctx.clock.now(),
      snapshot,
      outcome: 'refused',
      detail: '',
    };
    // Practice from the fleet's own records (inventory, claim), never from what the box says.
    const practiceOf = async (id: string) => (await this.ctx.store.devices.get(id))?.practice ?? null;
    const newPractice = await practiceOf(e.device_id);
    const oldPractice = DEVICE_ID.test(oldId) ? await practiceOf(oldId) : null;
    row.practice = newPractice;
    if (!DEVICE_ID.test(oldId)) row.detail = 'refused: the event names no valid device';
    else if (oldId === e.device_id) row.detail = 'refused: a box restored its own backup (nothing to revoke)';
    else if (oldPractice === null) row.detail = `refused: ${oldId} is not known to the fleet`;
    else if (oldPractice !== newPractice) row.detail = `refused: ${oldId} belongs to practice ${oldPractice}, ${e.device_id} to ${newPractice ?? 'none'}`;
    else {
      await this.revoke(oldId);
      row.outcome = 'revoked';
      row.detail = `${oldId} replaced by ${e.device_id} (restored snapshot ${snapshot ?? '?'}): broker client disabled`;
    }
    await this.d.run(
      `INSERT INTO device_replacements (event_id, old_id, new_id, practice, at, snapshot, outcome, detail)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING`,
      [row.event_id, row.old_id, row.new_id, row.practice, row.at, row.snapshot, row.outcome, row.detail],
    );
    await this.ctx.store.accounts.audit({
      at: row.at,
      username: 'fleet',
      device_id: DEVICE_ID.test(oldId) ? oldId : null,
      action: 'replace',
      args: JSON.stringify({ by: e.device_id, snapshot }),
      outcome: row.outcome === 'revoked' ? 'ok' : 'refused',
      detail: row.detail,
    });
    if (row.outcome === 'revoked') this.revoked++;
    else this.refused++;
    this.ctx.log[row.outcome === 'revoked' ? 'info' : 'warn']('replacement', {
      oldId: row.old_id,
      newId: row.new_id,
      outcome: row.outcome,
      detail: row.detail,
    });
    return row;
  }

  /** Marker and CRL first (a restart cannot re-admit it), then the live broker (kicks it, takes its rights). */
  private async revoke(id: string): Promise<void> {
    const c = this.ctx.config.claim;
    const dir = c.issuedDir;
    if (dir) {
      mkdirSync(dir, { recursive: true });
      const marker = revokedMarker(dir, id);
      if (!existsSync(marker)) {
        writeFileSync(`${marker}.tmp`, `${new Date(this.ctx.clock.now()).toISOString()} replaced\n`);
        renameSync(`${marker}.tmp`, marker);
      }
      if (c.caCertPath && c.caKeyPath) {
        try {
          writeCrl({ caCert: c.caCertPath, caKey: c.caKeyPath, revoked: revokedCertificates(dir), out: crlPathFor(dir), now: new Date(this.ctx.clock.now()) });
          this.onRevoked?.();
        } catch (e) {
          this.ctx.log.error('replacement: could not write the CRL', describeError(e));
        }
      }
    }
    await this.ctx.mqtt.publish(CONTROL_TOPIC, JSON.stringify({ commands: [{ command: 'disableClient', username: deviceUsername(id) }] }), { qos: 1 });
  }
}
