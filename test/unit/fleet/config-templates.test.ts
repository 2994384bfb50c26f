import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { REDACTED, redactSecrets } from '../../../agent/src/config/redact.js';
import { reportedDoc } from '../../../agent/src/telemetry/remote-config.js';
import { validateConfig } from '../../../agent/src/config/load.js';
import { configDiff } from '../../../fleet/src/config-templates/diff.js';
import { keepSecrets, layered, overlay, redactForDisplay } from '../../../fleet/src/config-templates/merge.js';
import { templateProblems } from '../../../fleet/src/config-templates/resolve.js';
import { canaryCount, nextRevision, rankDevices } from '../../../fleet/src/rollouts/plan.js';
import type { DeviceRow } from '../../../fleet/src/store/types.js';

describe('config templates: layering rules', () => {
  it('objects merge key by key, arrays and scalars replace, null deletes the inherited key', () => {
    const icb = {
      telemetry: { enabled: true, brokers: ['mqtts://a:8883', 'mqtts://b:8883'], intervalMs: 10_000 },
      log: { level: 'info' },
      cellular: { apn: 'icb.apn' },
    };
    const pcn = { telemetry: { brokers: ['mqtts://c:8883'] }, log: { level: 'warn' } };
    const practice = { telemetry: { intervalMs: null }, cellular: null, status: { port: 8443 } };
    const m = layered([icb, pcn, practice]);
    assert.deepEqual(m, { telemetry: { enabled: true, brokers: ['mqtts://c:8883'] }, log: { level: 'warn' }, status: { port: 8443 } });
    assert.deepEqual(icb.telemetry.brokers.length, 2, 'inputs are not modified');
  });

  it('a null under a key with nothing below deletes nothing and is not passed on', () => {
    assert.deepEqual(overlay({}, { a: { b: null, c: 1 }, d: null }), { a: { c: 1 } });
  });

  it('templates may not set the fields the fleet owns per device', () => {
    assert.deepEqual(
      templateProblems({ site: { deviceId: 'x', practiceName: 'ok' }, revision: 3 }).map((p) => p.path),
      ['/site/deviceId', '/revision'],
    );
    assert.deepEqual(templateProblems({ site: { practiceName: 'High Street' } }), []);
    assert.equal(templateProblems([1])[0]!.path, '/');
  });
});

describe('config templates: secrets', () => {
  const doc = {
    records: { dayList: { bearerToken: 's3cret-token', fhirBaseUrl: 'https://x' }, capture: { authToken: '' } },
    telephony: { trunk: { password: 'sip-pass-123' } },
    wifi: { passphraseFile: '/etc/psk' },
  };

  it('shown back redacted; empty secrets and ...File paths stay as they are', () => {
    const r = redactForDisplay(doc) as typeof doc;
    assert.equal(r.records.dayList.bearerToken, REDACTED);
    assert.equal(r.telephony.trunk.password, REDACTED);
    assert.equal(r.records.capture.authToken, '');
    assert.equal(r.wifi.passphraseFile, '/etc/psk');
    assert.doesNotMatch(JSON.stringify(r), /s3cret|sip-pass/);
    assert.deepEqual(redactSecrets(doc), r, 'the agent and the fleet redact alike');
  });

  it('saving "[redacted]" keeps the stored secret; with none stored it is a problem, not a literal', () => {
    const edited = redactForDisplay({ ...doc, log: { level: 'warn' } });
    const kept = keepSecrets(edited, doc);
    assert.deepEqual(kept.problems, []);
    assert.equal((kept.doc as typeof doc).records.dayList.bearerToken, 's3cret-token');
    assert.equal((kept.doc as typeof doc).telephony.trunk.password, 'sip-pass-123');
    const fresh = keepSecrets({ telephony: { trunk: { password: REDACTED } } }, undefined);
    assert.deepEqual(
      fresh.problems.map((p) => p.path),
      ['/telephony/trunk/password'],
    );
    const notSecret = keepSecrets({ site: { practiceName: REDACTED } }, { site: { practiceName: 'x' } });
    assert.equal(notSecret.problems.length, 1, 'only secret keys can be kept');
  });

  it("the agent's config/reported config carries no secret values", () => {
    const r = validateConfig({ records: { dayList: { bearerToken: 'tok-123456' } } });
    assert.ok(r.ok);
    const rep = reportedDoc(3, 3, 'applied', [], 1, r.config);
    assert.doesNotMatch(JSON.stringify(rep), /tok-123456/);
    assert.equal((rep.config as { records: { dayList: { bearerToken: string } } }).records.dayList.bearerToken, REDACTED);
    assert.equal(reportedDoc(3, 3, 'applied', [], 1).config, undefined, 'optional: left out when not given');
  });
});

describe('config diff: desired (defaults filled) vs reported', () => {
  it('lists differing fields, marks template-set ones, never compares or shows secret values', () => {
    const desired = { telemetry: { enabled: true, brokers: ['mqtts://a:8883'], intervalMs: 20_000 }, records: { dayList: { bearerToken: 'tok' } } };
    const ok = validateConfig({ ...desired, revision: 1 });
    assert.ok(ok.ok);
    const reported = redactSecrets(structuredClone(ok.config)) as unknown as Record<string, unknown>;
    (reported.telemetry as { intervalMs: number }).intervalMs = 10_000;
    (reported.status as { port: number }).port = 9999;
    const d = configDiff(desired, reported);
    const byPath = new Map(d.rows.map((r) => [r.path, r]));
    assert.deepEqual(
      [byPath.get('/telemetry/intervalMs')?.desired, byPath.get('/telemetry/intervalMs')?.reported, byPath.get('/telemetry/intervalMs')?.managed],
      [20_000, 10_000, true],
    );
    assert.deepEqual([byPath.get('/status/port')?.state, byPath.get('/status/port')?.managed], ['differs', false]);
    assert.equal(byPath.get('/records/dayList/bearerToken')?.state, 'secret');
    assert.doesNotMatch(JSON.stringify(d), /"tok"/);
    assert.equal(d.rows.filter((r) => r.state !== 'secret').length, 2);
    assert.ok(d.equal > 50);
  });
});

describe('rollout maths', () => {
  it('5 % canaries, rounded up, at least one, at most all', () => {
    assert.deepEqual(
      [0, 1, 2, 19, 20, 21, 40, 100, 101, 10_000].map((n) => canaryCount(n, 5)),
      [0, 1, 1, 1, 1, 2, 2, 5, 6, 500],
    );
    assert.equal(canaryCount(3, 100), 3);
  });

  it('deterministic ranking, online devices first, spread by hash rather than id order', () => {
    const devs = Array.from({ length: 40 }, (_, i) => ({ id: `P8${String(1000 + i)}-01`, online: i === 7 ? 0 : 1 }));
    const a = rankDevices('pcn:PCN-N', devs);
    assert.deepEqual(a, rankDevices('pcn:PCN-N', [...devs].reverse()), 'input order does not matter');
    assert.equal(a.at(-1), 'P81007-01', 'the offline device goes last');
    assert.notDeepEqual(
      a.slice(0, 2),
      devs.slice(0, 2).map((d) => d.id),
    );
    assert.notDeepEqual(rankDevices('pcn:PCN-S', devs).slice(0, 2), a.slice(0, 2), 'another scope, other canaries');
  });

  it('the next revision is above anything sent or reported', () => {
    const d = { config_revision: 4, reported_revision: 5, reported_json: JSON.stringify({ lastDesiredRevision: 9 }) } as DeviceRow;
    assert.equal(nextRevision(d, 7), 10);
    assert.equal(nextRevision({ config_revision: null, reported_revision: null, reported_json: null } as DeviceRow, undefined), 1);
  });
});
