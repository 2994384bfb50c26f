import type { SqlDriver } from './driver.js';

/**
 * Numbered migrations, one SQL text for both databases; `{{serial}}` is the only dialect
 * difference (an auto-increment primary key). Times are epoch ms in BIGINT, booleans 0/1,
 * JSON as TEXT, so rows read the same from either driver.
 */
const MIGRATIONS: { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
CREATE TABLE devices (
  id TEXT PRIMARY KEY, first_seen BIGINT NOT NULL, practice TEXT NOT NULL, practice_name TEXT, pcn TEXT, clinical_system TEXT,
  online INTEGER NOT NULL DEFAULT 0, state_since BIGINT, state_at BIGINT, boot_id TEXT, bd_seq BIGINT, birth_bd_seq BIGINT,
  version TEXT, config_revision BIGINT, last_seen BIGINT,
  telemetry_at BIGINT, active_uplink TEXT, active_kind TEXT, cellular_since BIGINT,
  telephony_mode TEXT, telephony_registered INTEGER, telephony_calls INTEGER,
  records_stale INTEGER, records_as_of BIGINT,
  data_pct DOUBLE PRECISION, data_used BIGINT, data_allowance BIGINT,
  drill_at BIGINT, drill_passed INTEGER, drill_json TEXT,
  reported_revision BIGINT, reported_status TEXT, reported_json TEXT, reported_at BIGINT,
  health_json TEXT
);
CREATE INDEX devices_practice ON devices (practice);
CREATE TABLE samples (
  id TEXT PRIMARY KEY, device_id TEXT NOT NULL, at BIGINT NOT NULL, active_kind TEXT,
  data_pct DOUBLE PRECISION, data_used BIGINT, records_stale INTEGER, telephony_mode TEXT, online INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX samples_device_at ON samples (device_id, at);
CREATE TABLE events (id TEXT PRIMARY KEY, device_id TEXT NOT NULL, name TEXT NOT NULL, at BIGINT NOT NULL, payload TEXT);
CREATE INDEX events_device_at ON events (device_id, at);
CREATE INDEX events_name_at ON events (name, at);
CREATE TABLE state_log (id {{serial}}, device_id TEXT NOT NULL, at BIGINT NOT NULL, online INTEGER NOT NULL, bd_seq BIGINT);
CREATE INDEX state_log_device_at ON state_log (device_id, at);
CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
CREATE TABLE users (username TEXT PRIMARY KEY, hash TEXT NOT NULL, role TEXT NOT NULL, practice TEXT, created_at BIGINT NOT NULL);
CREATE TABLE sessions (token TEXT PRIMARY KEY, username TEXT NOT NULL, csrf TEXT NOT NULL, expires_at BIGINT NOT NULL);
CREATE TABLE audit (id {{serial}}, at BIGINT NOT NULL, username TEXT NOT NULL, device_id TEXT, action TEXT NOT NULL, args TEXT,
  outcome TEXT NOT NULL, detail TEXT);
CREATE INDEX audit_at ON audit (at);
CREATE TABLE alerts (
  id {{serial}}, device_id TEXT NOT NULL, kind TEXT NOT NULL, level TEXT NOT NULL, summary TEXT NOT NULL,
  opened_at BIGINT NOT NULL, cleared_at BIGINT, acked_by TEXT, acked_at BIGINT, delivered TEXT
);
CREATE UNIQUE INDEX alerts_open ON alerts (device_id, kind, level) WHERE cleared_at IS NULL;
CREATE TABLE templates (scope TEXT NOT NULL, scope_id TEXT NOT NULL, doc TEXT NOT NULL, updated_at BIGINT NOT NULL, updated_by TEXT NOT NULL,
  PRIMARY KEY (scope, scope_id));
CREATE TABLE desired (device_id TEXT PRIMARY KEY, revision BIGINT NOT NULL, doc TEXT NOT NULL, published_at BIGINT NOT NULL, rollout_id BIGINT);
CREATE TABLE rollouts (
  id {{serial}}, created_at BIGINT NOT NULL, created_by TEXT NOT NULL, scope TEXT NOT NULL, scope_id TEXT NOT NULL,
  phase TEXT NOT NULL, canary TEXT NOT NULL, targets TEXT NOT NULL, message TEXT, updated_at BIGINT NOT NULL
);
`,
  },
  {
    // Config templates (versioned), the practice -> PCN map, and staged rollouts' per-device steps.
    version: 2,
    sql: `
ALTER TABLE templates ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
CREATE TABLE template_versions (scope TEXT NOT NULL, scope_id TEXT NOT NULL, version BIGINT NOT NULL, doc TEXT NOT NULL, at BIGINT NOT NULL,
  by_user TEXT NOT NULL, PRIMARY KEY (scope, scope_id, version));
CREATE TABLE practice_pcn (practice TEXT PRIMARY KEY, pcn TEXT NOT NULL, updated_at BIGINT NOT NULL, updated_by TEXT NOT NULL);
ALTER TABLE rollouts ADD COLUMN soak_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE rollouts ADD COLUMN soak_from BIGINT;
ALTER TABLE rollouts ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollouts ADD COLUMN started_at BIGINT;
CREATE TABLE rollout_devices (
  rollout_id BIGINT NOT NULL, device_id TEXT NOT NULL, canary INTEGER NOT NULL, rank INTEGER NOT NULL, revision BIGINT NOT NULL, doc TEXT NOT NULL,
  state TEXT NOT NULL, claimed_at BIGINT, published_at BIGINT, settled_at BIGINT, detail TEXT, PRIMARY KEY (rollout_id, device_id)
);
CREATE INDEX rollout_devices_device ON rollout_devices (device_id);
`,
  },
  {
    // Sign-in hardening (issue 17): account lockout, disabled accounts, and sessions keyed by a hash
    // of their id with idle and absolute timeouts. Old sessions (plain tokens) are dropped: everyone
    // signs in again once after the upgrade.
    version: 3,
    sql: `
ALTER TABLE users ADD COLUMN failed_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until BIGINT;
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN last_login_at BIGINT;
DROP TABLE sessions;
CREATE TABLE sessions (id TEXT PRIMARY KEY, username TEXT NOT NULL, csrf TEXT NOT NULL, created_at BIGINT NOT NULL, last_seen BIGINT NOT NULL);
CREATE INDEX sessions_username ON sessions (username);
`,
  },
  {
    // Alert triage (issue 17): snooze, and maintenance windows (a device, a practice, or the ICB)
    // during which no new alert opens for the devices they cover.
    version: 4,
    sql: `
ALTER TABLE alerts ADD COLUMN snoozed_until BIGINT;
ALTER TABLE alerts ADD COLUMN snoozed_by TEXT;
CREATE INDEX alerts_opened_at ON alerts (opened_at);
CREATE TABLE maintenance (
  id {{serial}}, scope TEXT NOT NULL, scope_id TEXT NOT NULL, starts_at BIGINT NOT NULL, ends_at BIGINT NOT NULL, reason TEXT NOT NULL,
  created_by TEXT NOT NULL, created_at BIGINT NOT NULL, ended_by TEXT, ended_at BIGINT
);
CREATE INDEX maintenance_ends ON maintenance (ends_at);
`,
  },
  {
    // Optional TOTP second factor (issue 17): the sealed secret once confirmed, one being set up,
    // and the last time step a code was accepted for (a code is good once).
    version: 5,
    sql: `
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_pending TEXT;
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;
`,
  },
  {
    // Issue 17 follow-ups: one-time recovery codes for the second factor (only a SHA-256 of each,
    // used_at once spent), and the one re-notification when an alert's snooze ends with it still open
    // (snooze_notified_until: the snoozed_until it was sent for, so a new snooze can end with one more).
    version: 6,
    sql: `
CREATE TABLE totp_recovery (username TEXT NOT NULL, hash TEXT NOT NULL, created_at BIGINT NOT NULL, used_at BIGINT, PRIMARY KEY (username, hash));
ALTER TABLE alerts ADD COLUMN snooze_notified_until BIGINT;
ALTER TABLE alerts ADD COLUMN renotified_at BIGINT;
ALTER TABLE alerts ADD COLUMN renotified TEXT;
`,
  },
  {
    // Software update campaigns (issue 17): a signed bundle sent to chosen practices with the
    // \`update\` command, canaries first, with the rollouts' stop rules; one row per device with its
    // progress as the box reports it (update.* events). Number 8 is taken by another change.
    version: 7,
    sql: `
CREATE TABLE campaigns (
  id {{serial}}, created_at BIGINT NOT NULL, created_by TEXT NOT NULL, bundle_url TEXT NOT NULL, version TEXT NOT NULL, arch TEXT NOT NULL,
  practices TEXT NOT NULL, canary_pct DOUBLE PRECISION NOT NULL, soak_ms BIGINT NOT NULL, allow_cellular INTEGER NOT NULL DEFAULT 0,
  phase TEXT NOT NULL, message TEXT, updated_at BIGINT NOT NULL, started_at BIGINT, started_by TEXT, soak_from BIGINT, ended_by TEXT
);
CREATE TABLE campaign_devices (
  campaign_id BIGINT NOT NULL, device_id TEXT NOT NULL, canary INTEGER NOT NULL, rank INTEGER NOT NULL, from_version TEXT,
  state TEXT NOT NULL, claimed_at BIGINT, sent_at BIGINT, settled_at BIGINT, update_id TEXT, progress TEXT, detail TEXT,
  PRIMARY KEY (campaign_id, device_id)
);
CREATE INDEX campaign_devices_device ON campaign_devices (device_id);
`,
  },
  {
    // Deployment (issue 17): fleet instances sharing one database and one shared-subscription group.
    // Each writes a heartbeat; a survivor that finds a peer's heartbeat stale claims it
    // (takeover_by/at, compare-and-set), drains the peer's broker session and records drained_at.
    // Number 8 (7 is another change's); migrateStore applies every missing number, so the order
    // the two arrive in does not matter.
    version: 8,
    sql: `
CREATE TABLE fleet_instances (
  id TEXT PRIMARY KEY, host TEXT NOT NULL, started_at BIGINT NOT NULL, heartbeat_at BIGINT NOT NULL, dashboard TEXT,
  takeover_by TEXT, takeover_at BIGINT, drained_at BIGINT, drained_messages BIGINT
);
`,
  },
  {
    // Update hours for software update campaigns: "HH:MM-HH:MM" UK time (campaigns/hours.ts) outside
    // which no box is sent the command (a box reboots after its download, dropping the surgery's
    // calls and network); NULL, as every campaign before, means any time.
    version: 9,
    sql: `
ALTER TABLE campaigns ADD COLUMN hours TEXT;
`,
  },
  {
    // Pause and resume for update campaigns: while paused_at is set no box is sent the command
    // (campaigns/engine.ts); boxes already sent are still followed and the stop rules still apply.
    // NULL, as every campaign before, means not paused.
    version: 10,
    sql: `
ALTER TABLE campaigns ADD COLUMN paused_at BIGINT;
ALTER TABLE campaigns ADD COLUMN paused_by TEXT;
`,
  },
];

/**
 * Applies every migration not yet recorded, in number order (a number missing in the middle, such
 * as one merged later than a higher one, is applied too). Under a database-wide lock, so two
 * instances starting together against one PostgreSQL never run the same DDL twice.
 */
export async function migrateStore(d: SqlDriver): Promise<number> {
  await d.exclusive(
    'migrations',
    async () => {
      await d.exec('CREATE TABLE IF NOT EXISTS fleet_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
      const done = new Set((await d.all<{ version: number }>('SELECT version FROM fleet_migrations')).map((r) => Number(r.version)));
      const serial = d.dialect === 'sqlite' ? 'INTEGER PRIMARY KEY AUTOINCREMENT' : 'BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY';
      for (const m of [...MIGRATIONS].sort((a, b) => a.version - b.version)) {
        if (done.has(m.version)) continue;
        await d.tx(async (t) => {
          await t.exec(m.sql.replaceAll('{{serial}}', serial));
          await t.run('INSERT INTO fleet_migrations (version, applied_at) VALUES (?, ?)', [m.version, Date.now()]);
        });
      }
    },
    { wait: true },
  );
  return Math.max(...MIGRATIONS.map((m) => m.version));
}
