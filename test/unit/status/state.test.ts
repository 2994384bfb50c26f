import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deriveState } from '../../../agent/src/status/state.js';
import { cellularHealth, failoverHealth, recordsHealth, telemetryHealth } from './fixtures.js';
import { healthOf } from '../../helpers/reports.js';

// Fixed formatter: the derivation is tested, not the host's time zone.
const fmt = (t: number) => new Date(t).toISOString().slice(11, 16);
const T1042 = Date.parse('2026-11-27T10:42:00Z');
const T1030 = Date.parse('2026-11-27T10:30:00Z');

describe('state line', () => {
  it('normal: on the wired primary with the 4G backup healthy', () => {
    const s = deriveState({ failover: failoverHealth('wan', T1042, 'up', 'up'), cellular: cellularHealth(), telemetry: telemetryHealth() }, fmt);
    assert.equal(s.level, 'normal');
    assert.equal(s.text, 'All systems normal');
  });

  it('backup: running on 4G, with the time it started', () => {
    const s = deriveState({ failover: failoverHealth('lte', T1042, 'down', 'up'), records: recordsHealth(T1030) }, fmt);
    assert.equal(s.level, 'backup');
    assert.equal(s.text, 'Internet down - running on 4G backup since 10:42');
  });

  it('offline: no uplink, records cache available as of its sync time', () => {
    const s = deriveState({ failover: failoverHealth(null, T1042, 'down', 'down'), records: recordsHealth(T1030) }, fmt);
    assert.equal(s.level, 'offline');
    assert.equal(s.text, 'Offline since 10:42 - records cache available, as of 10:30');
  });

  it('offline without a records cache says since when', () => {
    const s = deriveState({ failover: failoverHealth(null, T1042, 'down', 'down') }, fmt);
    assert.equal(s.text, 'Offline - no internet connection since 10:42');
  });

  it('attention: on primary but the 4G backup is down', () => {
    const s = deriveState({ failover: failoverHealth('wan', T1042, 'up', 'down') }, fmt);
    assert.equal(s.level, 'attention');
    assert.equal(s.text, 'Internet working - 4G backup not available');
  });

  it('attention when the last drill failed, naming the step', () => {
    const drills = healthOf(
      'drills',
      { last: { id: 'd1', at: T1030, passed: false, steps: [{ name: 'lte end-to-end', passed: false, detail: 'no answer' }] } },
      'degraded',
      'x',
    );
    const s = deriveState({ failover: failoverHealth('wan', T1042, 'up', 'up'), drills }, fmt);
    assert.equal(s.level, 'attention');
    assert.match(s.text, /Last backup drill failed: lte end-to-end/);
  });

  it('unknown while failover is absent or every uplink is still unknown', () => {
    assert.equal(deriveState({}, fmt).level, 'unknown');
    assert.equal(deriveState({ failover: failoverHealth(null, null, 'unknown', 'unknown') }, fmt).level, 'unknown');
  });

  it('maintenance: forced onto 4G is not reported as an outage', () => {
    const h = failoverHealth('lte', T1042, 'up', 'up');
    (h.details as Record<string, unknown>).forced = { uplink: 'lte', until: T1042 + 3600_000 };
    const s = deriveState({ failover: h }, fmt);
    assert.equal(s.level, 'backup');
    assert.equal(s.text, 'Maintenance - running on 4G backup since 10:42');
    assert.ok(s.notes.some((n) => n.includes('until 11:42')));
  });
});

describe('cards', () => {
  it('any capability gets a generic card, with everything escaped', async () => {
    const { renderCards } = await import('../../../agent/src/status/cards.js');
    const html = renderCards({ 'sms-gateway': { status: 'degraded', summary: '<script>x</script>', details: { lines: ['trunk "a" & <b>'] } } }, null);
    assert.match(html, /<h2 id="c-sms-gateway">Sms-gateway <span class="badge b-degraded">Warning<\/span><\/h2>/);
    assert.ok(html.includes('&lt;script&gt;x&lt;/script&gt;'));
    assert.ok(html.includes('trunk &quot;a&quot; &amp; &lt;b&gt;'));
    assert.doesNotMatch(html, /<script>/);
  });
});

describe('not colour alone', () => {
  it('each level has its own icon and its own words; the icon is hidden from screen readers, the text is not', async () => {
    const { ICONS } = await import('../../../agent/src/status/state.js');
    const { renderState } = await import('../../../agent/src/status/cards.js');
    const levels = Object.keys(ICONS) as (keyof typeof ICONS)[];
    assert.equal(new Set(levels.map((l) => ICONS[l])).size, levels.length, 'distinct icons');
    const texts = [
      deriveState({ failover: failoverHealth('wan', T1042, 'up', 'up') }, fmt),
      deriveState({ failover: failoverHealth('wan', T1042, 'up', 'down') }, fmt),
      deriveState({ failover: failoverHealth('lte', T1042, 'down', 'up') }, fmt),
      deriveState({ failover: failoverHealth(null, T1042, 'down', 'down') }, fmt),
      deriveState({}, fmt),
    ];
    assert.deepEqual(
      texts.map((t) => t.level),
      ['normal', 'attention', 'backup', 'offline', 'unknown'],
    );
    assert.equal(new Set(texts.map((t) => t.text)).size, 5, 'the words alone tell the states apart');
    for (const t of texts) {
      const html = renderState(t);
      assert.ok(html.includes(`<span class="icon" aria-hidden="true">${ICONS[t.level]}</span>`), html);
      assert.ok(html.includes(`<span class="text">${t.text.replace(/&/g, '&amp;')}</span>`));
    }
  });
});
