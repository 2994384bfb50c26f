import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bandOf, changedKeys, meaningful, type Flat } from '../../../agent/src/telemetry/change-detector.js';
import { ReportPolicy } from '../../../agent/src/telemetry/report-policy.js';
import type { TelemetryMessage } from '../../../contract/mqtt.js';
import type { CapabilityName, Reports } from '../../../contract/reports/index.js';
import { healthOf } from '../../helpers/reports.js';

type Over<K extends CapabilityName> = Partial<Reports[K]>;

/** One telemetry sample of a box on 4G; `caps` overrides report fields per capability. */
function sample(
  at: number,
  o: {
    failover?: Over<'failover'>;
    cellular?: Over<'cellular'>;
    telephony?: Over<'telephony'>;
    records?: Over<'records'>;
    system?: Partial<TelemetryMessage['system']>;
  } = {},
): TelemetryMessage {
  return {
    id: '01JDV2Q5S8Y3M0B6Z7K2N4R9TA',
    at,
    bootId: 'boot-1',
    activeUplink: '4g',
    activeKind: 'cellular',
    system: {
      cpuLoadPct: 3,
      loadAvg1: 0.1,
      memUsedPct: 40,
      memTotalBytes: 4e9,
      disks: [{ mount: '/', sizeBytes: 32e9, usedPct: 21 }],
      cpuTempC: 48,
      throttled: null,
      uptimeS: at / 1000,
      ...o.system,
    },
    capabilities: {
      failover: healthOf('failover', { active: '4g', since: 1, reason: 'wan down', ...o.failover }),
      cellular: healthOf('cellular', o.cellular ?? {}),
      telephony: healthOf('telephony', o.telephony ?? {}),
      records: healthOf('records', { asOf: 1, stale: false, ...o.records }),
      // A plug-in outside the contract: counted by status alone.
      plugin: { status: 'ok', summary: 'fine', details: { ticks: at } },
    },
  };
}

const diff = (a: TelemetryMessage, b: TelemetryMessage) => {
  const fa = meaningful(a);
  return changedKeys(fa, meaningful(b, fa));
};

describe('telemetry change detector (what is meaningful on 4G)', () => {
  it('ignores counters, timestamps, summaries and figures that stay in their band', () => {
    const a = sample(1000);
    const b = sample(61_000, {
      cellular: { usage: { usedBytes: 1.3e9, allowanceBytes: 20e9, usedPct: 6.5, cycleStart: 0 }, signal: { rsrp: -97, rsrq: -11, sinr: 10, quality: 66 } },
      telephony: { callsInProgress: 3, since: 5 },
      records: { asOf: 900_000, patients: 9900 },
      system: { cpuLoadPct: 70, memUsedPct: 55, uptimeS: 99_999 },
    });
    b.capabilities.failover!.summary = 'on 4g for 2 minutes';
    assert.deepEqual(diff(a, b), []);
  });

  it('a state, route or health status change is meaningful, named by its field', () => {
    const a = sample(0);
    assert.deepEqual(diff(a, sample(1, { failover: { active: 'wan' } })), ['failover.active']);
    assert.deepEqual(diff(a, sample(1, { telephony: { emergencyRoute: 'none' } })), ['telephony.emergencyRoute']);
    assert.deepEqual(diff(a, sample(1, { records: { stale: true } })), ['records.stale']);
    assert.deepEqual(diff(a, sample(1, { cellular: { modem: 'searching' } })), ['cellular.modem']);
    const degraded = sample(1);
    degraded.capabilities.plugin!.status = 'degraded';
    assert.deepEqual(diff(a, degraded), ['plugin.status']);
    const wired = { ...sample(1), activeUplink: 'wan', activeKind: 'wired' as const };
    assert.deepEqual(diff(a, wired), ['activeKind', 'activeUplink']);
    const gone = sample(1);
    delete gone.capabilities.telephony;
    assert.ok(diff(a, gone).includes('telephony.mode'), 'a capability that vanished is a change');
  });

  it('crossing a threshold is meaningful; counters count by power of two', () => {
    const a = sample(0);
    const usage = (usedPct: number) => ({ usage: { usedBytes: 1, allowanceBytes: 20e9, usedPct, cycleStart: 0 } });
    assert.deepEqual(diff(a, sample(1, { cellular: usage(76) })), ['cellular.usedPct'], '75% of the allowance crossed');
    assert.deepEqual(diff(a, sample(1, { system: { disks: [{ mount: '/', sizeBytes: 32e9, usedPct: 91 }] } })), ['system.disk./']);
    assert.deepEqual(diff(a, sample(1, { cellular: { signal: { rsrp: -125, rsrq: -20, sinr: -3, quality: 5 } } })), ['cellular.signal']);
    assert.deepEqual(diff(a, sample(1, { telephony: { registered: 1 } })), ['telephony.registered'], 'first handset registers');
    const four = sample(1, { telephony: { registered: 4 } });
    assert.deepEqual(diff(four, sample(2, { telephony: { registered: 7 } })), [], '4 and 7 share a bucket');
    assert.deepEqual(diff(four, sample(2, { telephony: { registered: 8 } })), ['telephony.registered']);
  });

  it('bands have hysteresis: a figure wobbling on an edge does not flap', () => {
    assert.equal(bandOf(74.9, [50, 75, 90], 0.5), 1);
    assert.equal(bandOf(75.2, [50, 75, 90], 0.5, 1), 1, 'not past the edge by the margin: stays');
    assert.equal(bandOf(75.6, [50, 75, 90], 0.5, 1), 2);
    assert.equal(bandOf(74.8, [50, 75, 90], 0.5, 2), 2, 'back under the edge, within the margin: stays');
    assert.equal(bandOf(74.4, [50, 75, 90], 0.5, 2), 1);
    assert.equal(bandOf(95, [50, 75, 90], 0.5, 0), 3, 'a jump over several edges lands in its band');
    let prev: Flat | null = null;
    const hits: number[] = [];
    // RSRP wobbling around -105 dBm (the poor/fair edge, margin 3): one change, then quiet.
    for (const [i, rsrp] of [-103, -106, -104, -106.5, -104.5, -106, -104].entries()) {
      const f = meaningful(sample(i, { cellular: { signal: { rsrp, rsrq: -10, sinr: 5, quality: 50 } } }), prev);
      if (prev && changedKeys(prev, f).length) hits.push(i);
      prev = f;
    }
    assert.deepEqual(hits, []);
    const f = meaningful(sample(9, { cellular: { signal: { rsrp: -109, rsrq: -10, sinr: 5, quality: 50 } } }), prev);
    assert.deepEqual(changedKeys(prev, f), ['cellular.signal'], 'well past the edge: a change');
  });

  it('a report that breaks its schema counts by its status alone and never throws', () => {
    const a = sample(0);
    const broken = sample(1);
    broken.capabilities.telephony = { status: 'ok', summary: 'x', details: { mode: 42 } };
    const keys = diff(a, broken);
    assert.ok(keys.length > 0 && keys.every((k) => k.startsWith('telephony.')), keys.join());
    assert.doesNotThrow(() => meaningful({ ...a, capabilities: { failover: { status: 'ok', summary: '' } } }));
  });
});

describe('telemetry report policy', () => {
  const times = { heartbeatMs: 60_000, fullEveryMs: 900_000, checkMs: 10_000 };

  it('on 4G: the first sample is a full report, then heartbeats each minute, a refresh every 15 min, a change at once', () => {
    const p = new ReportPolicy(times);
    const log: string[] = [];
    for (let t = 0; t <= 1_650_000; t += 10_000) {
      const changedAt = t >= 400_000 && t < 700_000;
      const d = p.decide(sample(t, changedAt ? { failover: { active: 'wan' } } : {}), true);
      if (d.send === 'heartbeat') p.heartbeatSent(t);
      if (d.send !== 'none')
        log.push(`${t / 1000}:${d.send === 'full' ? d.trigger : 'hb'}${d.send === 'full' && d.changed.length ? `(${d.changed.join()})` : ''}`);
    }
    const fulls = log.filter((l) => !l.endsWith(':hb'));
    assert.deepEqual(fulls, ['0:change', '400:change(failover.active)', '700:change(failover.active)', '1600:refresh']);
    const hbs = log.filter((l) => l.endsWith(':hb')).map((l) => Number(l.split(':')[0]));
    assert.deepEqual(hbs.slice(0, 6), [60, 120, 180, 240, 300, 360]);
    assert.equal(hbs.length, 6 + 4 + 14, 'one a minute after the last message, none when a full report went');
    const all = log.map((l) => Number(l.split(':')[0]));
    for (let i = 1; i < all.length; i++) assert.ok(all[i]! - all[i - 1]! <= 60, `silent from ${all[i - 1]} s to ${all[i]} s`);
  });

  it('a heartbeat that could not go (offline) is due again at the next check', () => {
    const p = new ReportPolicy(times);
    p.decide(sample(0), true);
    assert.equal(p.decide(sample(60_000), true).send, 'heartbeat');
    assert.equal(p.decide(sample(70_000), true).send, 'heartbeat', 'not sent, so still due');
  });

  it('on a primary link every sample is a full report, and the next 4G sample compares against the last of them', () => {
    const p = new ReportPolicy(times);
    for (let t = 0; t < 50_000; t += 10_000)
      assert.deepEqual(p.decide({ ...sample(t), activeKind: 'wired', activeUplink: 'wan' }, false), { send: 'full', trigger: 'interval', changed: [] });
    const d = p.decide(sample(60_000), true);
    assert.deepEqual(d, { send: 'full', trigger: 'change', changed: ['activeKind', 'activeUplink'] });
  });
});
