import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backupStale, firing } from '../../../fleet/src/alerts/rules.js';
import { validateFleetConfig } from '../../../fleet/src/config.js';
import { deriveTelemetry } from '../../../fleet/src/ingest/derive.js';
import type { DeviceRow } from '../../../fleet/src/store/types.js';
import type { TelemetryMessage } from '../../../contract/mqtt.js';
import { healthOf, report } from '../../helpers/reports.js';

const H = 3600_000;
const NOW = Date.UTC(2026, 11, 7, 9);
const row = (health: unknown, o: Partial<DeviceRow> = {}): DeviceRow =>
  ({
    id: 'P81001-01',
    practice: 'P81001',
    practice_name: 'High Street Surgery',
    first_seen: NOW - 100 * H,
    online: 1,
    health_json: health === undefined ? null : JSON.stringify(health),
    ...o,
  }) as DeviceRow;

describe('fleet alert rule backup-stale', () => {
  const cfg = (() => {
    const r = validateFleetConfig({});
    assert.ok(r.ok);
    return r.config.alerts;
  })();

  it('fires past 26 h since the last good backup, naming the practice; not at 25 h', () => {
    assert.equal(backupStale(row({ backup: { status: 'ok', summary: '', lastGoodBackupAt: NOW - 25 * H } }), NOW), null);
    const f = firing(row({ backup: { status: 'degraded', summary: '', lastGoodBackupAt: NOW - 26 * H - 60_000 } }), NOW, cfg).filter(
      (x) => x.kind === 'backup-stale',
    );
    assert.deepEqual(f, [{ kind: 'backup-stale', level: '', summary: 'High Street Surgery (P81001): P81001-01 last good off-box backup 26 h ago' }]);
    assert.match(
      backupStale(row({ backup: { status: 'degraded', summary: '', lastGoodBackupAt: NOW - 30 * H } }, { practice_name: null }), NOW) ?? '',
      /^P81001: P81001-01 last good/,
    );
  });

  it('a box that never backed up alerts once the fleet has known it for 26 h; a new one does not', () => {
    assert.equal(backupStale(row({ backup: { status: 'degraded', summary: '', lastGoodBackupAt: null } }, { first_seen: NOW - 2 * H }), NOW), null);
    assert.match(
      backupStale(row({ backup: { status: 'degraded', summary: '', lastGoodBackupAt: null } }), NOW) ?? '',
      /has no good off-box backup \(known to the fleet for 100 h\)/,
    );
  });

  it('no alert without backup configured, without a backup report, or with unreadable health', () => {
    assert.equal(backupStale(row({ backup: { status: 'disabled', summary: 'off' } }), NOW), null);
    assert.equal(backupStale(row({ backup: { status: 'degraded', summary: 'report did not match its schema' } }), NOW), null);
    assert.equal(backupStale(row(undefined), NOW), null);
    assert.equal(backupStale(row(undefined, { health_json: '{"backup": not json' }), NOW), null);
  });

  it('derive keeps lastGoodBackupAt from a schema-valid backup report, and nothing from a malformed one', () => {
    const good = report('backup', { lastSuccessAt: NOW - 3 * H });
    const msg = (details: unknown): TelemetryMessage => ({
      id: '01JBAK0000000000000000000A',
      at: NOW,
      bootId: 'b',
      activeUplink: 'wan',
      activeKind: 'wired',
      system: { cpuLoadPct: 0, loadAvg1: 0, memUsedPct: 0, memTotalBytes: 0, disks: [], cpuTempC: null, throttled: null, uptimeS: 0 },
      capabilities: { backup: { ...healthOf('backup'), details: details as Record<string, unknown> } },
    });
    assert.equal(deriveTelemetry(msg(good)).health.backup?.lastGoodBackupAt, NOW - 3 * H);
    assert.equal(deriveTelemetry(msg({ ...good, lastSuccessAt: 'yesterday' })).health.backup?.lastGoodBackupAt, undefined);
  });
});
