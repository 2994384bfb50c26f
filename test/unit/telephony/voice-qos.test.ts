import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NftAdapter } from '../../../agent/src/platform/nft.js';
import { tcBatch, VoiceQos, voiceNftScript } from '../../../agent/src/telephony/voice-qos.js';
import { testConfig } from '../../helpers/ctx.js';
import { FakeRunner } from '../../helpers/fake-runner.js';

describe('voice shaper generation', () => {
  it('is off by default, with Pi/4G-sized defaults', () => {
    const v = testConfig({}).telephony.voice;
    assert.equal(v.enabled, false);
    assert.deepEqual(v.rtpPorts, { from: 10000, to: 32767 });
  });
  it('marks SIP and RTP EF on the 4G interface, and on the LAN interface only when download is shaped', () => {
    const base = {
      wanInterface: 'wwan0',
      lanInterface: 'lan0',
      uplinkKbit: 2000,
      downlinkKbit: 0,
      voiceKbit: 512,
      sipPort: 5060,
      rtpPorts: { from: 10000, to: 20000 },
    };
    assert.match(voiceNftScript(base), /oifname \{ "wwan0" \} udp sport 10000-20000 udp dport 10000-20000 ip dscp set ef/);
    assert.match(voiceNftScript({ ...base, downlinkKbit: 8000 }), /oifname \{ "wwan0", "lan0" \} udp dport 5060 ip dscp set ef/);
  });
  it('never gives voice more than half the link; EF (tos 0xb8) goes to the priority-0 class', () => {
    const b = tcBatch('wwan0', 400, 512);
    assert.match(b, /classid 1:10 htb rate 200kbit ceil 400kbit prio 0/);
    assert.match(b, /classid 1:20 htb rate 200kbit ceil 400kbit prio 1/);
    assert.match(b, /u32 match ip tos 0xb8 0xfc flowid 1:10/);
  });
  it('apply clears the root before rebuilding (idempotent), remove deletes what it applied', async () => {
    const r = new FakeRunner();
    r.on('tc', () => ({}));
    r.on('nft', () => ({}));
    const q = new VoiceQos(r, new NftAdapter(r));
    await q.apply({
      wanInterface: 'wwan0',
      lanInterface: 'lan0',
      uplinkKbit: 2000,
      downlinkKbit: 8000,
      voiceKbit: 256,
      sipPort: 5060,
      rtpPorts: { from: 10000, to: 20000 },
    });
    await q.remove();
    const tc = r.calls.filter((c) => c.cmd === 'tc').map((c) => c.args.join(' '));
    assert.deepEqual(tc, [
      'qdisc del dev wwan0 root',
      '-batch -',
      'qdisc del dev lan0 root',
      '-batch -',
      'qdisc del dev wwan0 root',
      'qdisc del dev lan0 root',
    ]);
  });
});
