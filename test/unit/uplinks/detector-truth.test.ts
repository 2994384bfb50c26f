/** Issue 20 in the pure detector: latency vs loss with late answers, DNS as its own signal. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UplinkDetector, type DetectorOptions } from '../../../agent/src/uplinks/detector.js';

const base: DetectorOptions = { window: 20, allFailRun: 3, quorumFailRun: 6, upRun: 3, degradedLossPct: 10, slowLatencyMs: 400 };

/** Round robin over 4 targets; target 1 is "http" (two round trips); `late` decides what a timeout becomes. */
function line(d: UplinkDetector, rounds: number, rtt: number, timeout = 600) {
  for (let r = 0; r < rounds; r++)
    for (let t = 0; t < 4; t++) {
      const took = t === 1 ? 2 * rtt : rtt;
      if (took < timeout) d.record(t, true, took);
      else {
        d.record(t, false, timeout, true);
        d.settle(t, d.lastSeq, true, took);
      }
    }
}

describe('detector: latency is not loss, DNS is its own signal', () => {
  it('+500 ms line: the HTTP target answers late every time; slow, 0% loss', () => {
    const d = new UplinkDetector(4, base);
    line(d, 30, 500);
    assert.equal(d.current, 'slow');
    assert.equal(d.lossPct(), 0);
    assert.equal(d.latencyMs(), 500);
  });

  it('a line so slow nothing answers in time is still slow, not down, while answers come back', () => {
    const d = new UplinkDetector(4, base);
    line(d, 5, 10);
    // 700 ms: every probe times out, every answer comes late; settled before the next round.
    line(d, 30, 700);
    assert.equal(d.current, 'slow', d.reason);
    assert.equal(d.lossPct(), 0);
  });

  it('on a fast line a late answer is a retransmitted lost packet: counted as loss', () => {
    const d = new UplinkDetector(4, base);
    line(d, 10, 5);
    // Every 4th probe of each target (staggered: random loss hits targets independently) "answers"
    // after a 1 s TCP retransmission.
    for (let r = 0; r < 20; r++)
      for (let t = 0; t < 4; t++) {
        if ((r + t) % 4 === 0) {
          d.record(t, false, 600, true);
          d.settle(t, d.lastSeq, true, 1005);
        } else d.record(t, true, 5);
      }
    assert.ok(d.lossPct()! >= 20, `loss ${d.lossPct()}`);
    assert.equal(d.current, 'degraded');
  });

  it('a pending sample is not loss yet, but counts toward the failure runs (blackhole speed)', () => {
    const d = new UplinkDetector(4, base);
    line(d, 5, 5);
    for (let r = 0; r < 3; r++) for (let t = 0; t < 4; t++) d.record(t, false, 600, true);
    assert.equal(d.current, 'down');
    assert.match(d.reason, /all 4 targets failed 3\+/);
  });

  it('a late answer overwritten by newer samples changes nothing', () => {
    const d = new UplinkDetector(1, { ...base, window: 3 });
    d.record(0, false, 600, true);
    const old = d.lastSeq;
    for (let i = 0; i < 3; i++) d.record(0, true, 5);
    d.settle(0, old, true, 900);
    assert.equal(d.latencyMs(), 5);
  });

  it('DNS: failing after dnsFailRun on every dns target, in words with the label; ok again after upRun answers', () => {
    const d = new UplinkDetector(4, { ...base, dnsTargets: [false, false, true, false], dnsFailRun: 12, label: 'BT broadband' });
    for (let r = 0; r < 5; r++) for (let t = 0; t < 4; t++) d.record(t, true, 5);
    assert.equal(d.dns(), 'ok');
    for (let r = 0; r < 11; r++) for (let t = 0; t < 4; t++) d.record(t, t !== 2, 5);
    assert.equal(d.dns(), 'ok', '11 failures: not yet');
    assert.equal(d.dnsAnswering(), false);
    d.record(2, false, 5);
    assert.equal(d.dns(), 'failing');
    assert.equal(d.current, 'degraded');
    assert.match(d.reason, /^DNS not answering on BT broadband \(every DNS target failed 12\+ probes in a row\); 3\/4 targets answering/);
    d.record(2, true, 5);
    d.record(2, true, 5);
    assert.equal(d.dns(), 'failing', 'hysteresis: needs upRun answers');
    d.record(2, true, 5);
    assert.equal(d.dns(), 'ok');
    assert.equal(d.dnsAnswering(), true);
  });

  it('no dns target: DNS is unmeasured, never failing', () => {
    const d = new UplinkDetector(2, base);
    for (let r = 0; r < 20; r++) for (let t = 0; t < 2; t++) d.record(t, true, 5);
    assert.equal(d.dns(), 'unmeasured');
    assert.equal(d.dnsAnswering(), null);
  });
});
