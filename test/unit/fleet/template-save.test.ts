import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { previewTemplate, restoreTemplate, saveTemplate, versionDiff } from '../../../fleet/src/config-templates/templates.js';
import type { FleetCtx } from '../../../fleet/src/ctx.js';
import { SqliteDriver } from '../../../fleet/src/store/driver.js';
import { Store } from '../../../fleet/src/store/store.js';
import { tempDir } from '../../helpers/fleet.js';

const DEVICES = ['P81001-01', 'P81001-02', 'P81002-01', 'P81003-01'];
const ICB = { telemetry: { enabled: true, brokers: ['mqtts://fleet.example:8883'], prefix: 'surgery-edge/v1' }, log: { level: 'warn' } };

/** Saving templates against a real SQLite store with devices in three practices. */
describe('config templates: saving', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: Store;
  let ctx: FleetCtx;
  const version = async (scope: 'icb' | 'pcn' | 'practice', id: string) => (await store.config.template(scope, id))?.version ?? 0;
  const save = async (scope: 'icb' | 'pcn' | 'practice', id: string, doc: unknown) =>
    saveTemplate(ctx, 'amy', scope, id, JSON.stringify(doc), await version(scope, id));

  before(async () => {
    tmp = tempDir();
    store = await Store.open(new SqliteDriver(join(tmp.dir, 'fleet.db')));
    let now = 1_760_000_000_000;
    ctx = { store, clock: { now: () => now++ } } as unknown as FleetCtx;
    for (const id of DEVICES) {
      const practice = id.slice(0, 6);
      await store.devices.ingest([
        {
          kind: 'state',
          deviceId: id,
          receivedAt: now,
          place: { practice, practiceName: null, pcn: practice === 'P81003' ? null : 'PCN-N', clinicalSystem: null },
          msg: { online: true, bootId: `b-${id}`, bdSeq: 1, configRevision: 1, at: now },
        },
      ]);
    }
  });
  after(async () => {
    await store?.close();
    tmp?.rm();
  });

  it('a partial practice or PCN template (only cellular.allowanceMb) saves over an ICB base with the required parts', async () => {
    const first = await save('practice', 'P81001', { cellular: { allowanceMb: 5000 } });
    assert.equal(first.ok, false, 'without an ICB base the merged result cannot keep telemetry');
    const icb = await save('icb', '', ICB);
    assert.ok(icb.ok, JSON.stringify(icb));
    const p = await save('practice', 'P81001', { cellular: { allowanceMb: 5000 } });
    assert.ok(p.ok, JSON.stringify(p));
    assert.equal(p.checked, 1);
    const pcn = await save('pcn', 'PCN-N', { cellular: { allowanceMb: 8000 } });
    assert.ok(pcn.ok, JSON.stringify(pcn));
    // A practice with no devices yet is checked against a stand-in that still takes the ICB base.
    const empty = await save('practice', 'Y99999', { cellular: { allowanceMb: 1000 } });
    assert.ok(empty.ok, JSON.stringify(empty));
  });

  it('a refusal names each problem once, with the devices it affects', async () => {
    const bad = await save('icb', '', { ...ICB, telemetry: { ...ICB.telemetry, intervalMs: 5 }, log: { level: 'loud' } });
    assert.equal(bad.ok, false);
    if (bad.ok) return;
    const paths = bad.problems.map((x) => x.path);
    assert.equal(new Set(paths).size, paths.length, `each problem once: ${JSON.stringify(bad.problems)}`);
    const interval = bad.problems.find((x) => x.path === '/telemetry/intervalMs');
    assert.ok(interval, JSON.stringify(bad.problems));
    assert.deepEqual(interval.devices, DEVICES);
    assert.match(interval.message, /4 devices/);
    assert.doesNotMatch(interval.message, /P81001 \(as/);
    assert.ok(bad.problems.find((x) => x.path === '/log/level'));
    // Only the devices a problem reaches are listed: a practice override that breaks one practice.
    const one = await save('practice', 'P81002', { telemetry: { enabled: false } });
    assert.equal(one.ok, false);
    if (one.ok) return;
    assert.deepEqual(
      one.problems.map((x) => [x.path, x.devices]),
      [['/telemetry', ['P81002-01']]],
    );
  });

  it('previews the merged result for a chosen device without saving, secrets redacted', async () => {
    const before = await version('practice', 'P81001');
    const edited = { cellular: { allowanceMb: 7000 }, records: { dayList: { bearerToken: 'tok-preview-secret' } } };
    const pv = await previewTemplate(ctx, 'practice', 'P81001', JSON.stringify(edited), 'P81001-02');
    assert.ok(pv.ok, JSON.stringify(pv));
    assert.equal(pv.device, 'P81001-02');
    assert.deepEqual(
      pv.layers.map((l) => l.replace(/@\d+$/, '')),
      ['icb', 'pcn:PCN-N', 'practice:P81001'],
    );
    const doc = pv.doc as { cellular: { allowanceMb: number }; telemetry: { brokers: string[] }; site: { deviceId: string }; records: unknown };
    assert.equal(doc.cellular.allowanceMb, 7000, 'the edited value, over the PCN one');
    assert.deepEqual(doc.telemetry.brokers, ICB.telemetry.brokers, 'inherited from the ICB base');
    assert.equal(doc.site.deviceId, 'P81001-02');
    assert.deepEqual(pv.problems, []);
    assert.doesNotMatch(JSON.stringify(pv), /tok-preview-secret/);
    assert.match(JSON.stringify(doc.records), /\[redacted\]/);
    assert.equal(await version('practice', 'P81001'), before, 'nothing saved');

    const broken = await previewTemplate(ctx, 'practice', 'P81001', JSON.stringify({ telemetry: { enabled: false } }), 'P81001-01');
    assert.ok(broken.ok);
    assert.deepEqual(
      broken.problems.map((x) => x.path),
      ['/telemetry'],
    );
    const elsewhere = await previewTemplate(ctx, 'practice', 'P81001', '{}', 'P81002-01');
    assert.equal(elsewhere.ok, false, 'a device the template does not reach');
    const bad = await previewTemplate(ctx, 'practice', 'P81001', '{nope', 'P81001-01');
    assert.equal(bad.ok, false);
  });

  it('diff between two versions names changed fields; a changed secret never shows its value', () => {
    const a = { log: { level: 'warn' }, cellular: { allowanceMb: 5000 }, records: { dayList: { bearerToken: 'old-tok-1' } } };
    const b = { log: { level: 'info' }, status: { port: 8443 }, records: { dayList: { bearerToken: 'new-tok-2' } } };
    const rows = versionDiff(a, b);
    assert.deepEqual(rows, [
      { path: '/cellular/allowanceMb', before: 5000, after: undefined },
      { path: '/log/level', before: 'warn', after: 'info' },
      { path: '/records/dayList/bearerToken', before: '[redacted]', after: '[redacted] (changed)' },
      { path: '/status/port', before: undefined, after: 8443 },
    ]);
    assert.doesNotMatch(JSON.stringify(rows), /tok-1|tok-2/);
    assert.deepEqual(versionDiff(a, a), []);
  });

  it('restores an older version as a new one, secrets kept, checked and audited', async () => {
    const withSecret = { cellular: { allowanceMb: 3000 }, records: { dayList: { bearerToken: 'tok-restore-1' } } };
    const v1 = await save('practice', 'P81003', withSecret);
    assert.ok(v1.ok, JSON.stringify(v1));
    const v2 = await save('practice', 'P81003', { cellular: { allowanceMb: 9000 } });
    assert.ok(v2.ok);
    const r = await restoreTemplate(ctx, 'root', 'practice', 'P81003', v1.version, v2.version);
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.version, v2.version + 1);
    assert.deepEqual(JSON.parse((await store.config.template('practice', 'P81003'))!.doc), withSecret, 'the stored secret came back');
    const audit = (await store.accounts.auditLog(100)).find((a) => a.action === 'template-restore');
    assert.ok(audit);
    assert.deepEqual(JSON.parse(audit.args!), { scope: 'practice', id: 'P81003', from: v1.version, version: r.version });
    assert.equal(audit.username, 'root');
    assert.doesNotMatch(JSON.stringify(await store.accounts.auditLog(100)), /tok-restore-1/);
    // Stale editor version: refused, nothing saved.
    const stale = await restoreTemplate(ctx, 'root', 'practice', 'P81003', v1.version, v2.version);
    assert.equal(stale.ok, false);
    assert.equal((await store.config.template('practice', 'P81003'))!.version, r.version);
    assert.equal((await restoreTemplate(ctx, 'root', 'practice', 'P81003', 99, r.version)).ok, false, 'no such version');
    // An old version that no longer validates (written straight to the store, as under an older base) is refused like any save.
    const bad = await store.config.saveTemplate('practice', 'P81003', JSON.stringify({ telemetry: { enabled: false } }), 'x', 1, r.version);
    assert.ok(bad.ok);
    const good = await save('practice', 'P81003', withSecret);
    assert.ok(good.ok);
    const refused = await restoreTemplate(ctx, 'root', 'practice', 'P81003', bad.version, good.version);
    assert.equal(refused.ok, false);
    if (!refused.ok)
      assert.deepEqual(
        refused.problems.map((p) => [p.path, p.devices]),
        [['/telemetry', ['P81003-01']]],
      );
    assert.equal((await store.config.template('practice', 'P81003'))!.version, good.version, 'nothing saved');
    assert.ok((await store.accounts.auditLog(100)).some((a) => a.action === 'template-restore' && a.outcome === 'refused'));
  });
});
