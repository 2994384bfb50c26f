/**
 * The voice shaper (agent/src/telephony/voice-qos.ts) applied by the real `nft` and `tc` in a
 * network namespace: the generated syntax loads (twice: idempotent), RTP/SIP-port UDP leaving on
 * the 4G interface is marked EF and lands in the voice class, other traffic in the bulk class, and
 * remove() leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { ProcessRunner, type CommandRunner } from '../../../agent/src/platform/command.js';
import { NftAdapter } from '../../../agent/src/platform/nft.js';
import { VOICE_TABLE, VoiceQos, type VoiceQosSpec } from '../../../agent/src/telephony/voice-qos.js';
import { requireRoot } from '../../helpers/ctx.js';

const skip = requireRoot();
const NS = 'tpq-app';
const PEER = 'tpq-peer';
const sh = (args: string[]) => execFileSync(args[0]!, args.slice(1), { encoding: 'utf8', stdio: ['pipe', 'pipe', 'ignore'] });
const inNs = (args: string[]) => sh(['ip', 'netns', 'exec', NS, ...args]);
const real = new ProcessRunner();
/** The agent's commands, run inside the namespace (as the agent would on the box). */
const nsRunner: CommandRunner = { run: (cmd, args, opts) => real.run('ip', ['netns', 'exec', NS, cmd, ...args], opts) };
const spec: VoiceQosSpec = {
  wanInterface: 'wwan0',
  lanInterface: 'lan0',
  uplinkKbit: 2000,
  downlinkKbit: 8000,
  voiceKbit: 256,
  sipPort: 5060,
  rtpPorts: { from: 10000, to: 20000 },
};

/** Send `n` UDP datagrams, 2 ms apart (a burst would overflow the short voice pfifo: by design), out of wwan0. */
function send(n: number, sport: number, dport: number): void {
  inNs([
    process.execPath,
    '-e',
    `const s=require('dgram').createSocket('udp4');s.bind(${sport},'10.88.0.1',async()=>{for(let i=0;i<${n};i++){` +
      `await new Promise(r=>s.send(Buffer.alloc(160),${dport},'10.88.0.2',r));await new Promise(r=>setTimeout(r,2));}s.close();});`,
  ]);
}
const classPkts = (dev: string, id: string) =>
  Number(new RegExp(`class htb ${id} [\\s\\S]*?Sent \\d+ bytes (\\d+) pkt`).exec(inNs(['tc', '-s', 'class', 'show', 'dev', dev]))?.[1] ?? -1);

describe('voice shaper with the real tc and nft', { skip }, () => {
  const qos = new VoiceQos(nsRunner, new NftAdapter(nsRunner));
  before(() => {
    for (const n of [NS, PEER]) {
      try {
        sh(['ip', 'netns', 'del', n]);
      } catch {
        /* not there */
      }
      sh(['ip', 'netns', 'add', n]);
    }
    sh(['ip', 'link', 'add', 'wwan0', 'netns', NS, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', PEER]);
    sh(['ip', 'link', 'add', 'lan0', 'netns', NS, 'type', 'veth', 'peer', 'name', 'eth1', 'netns', PEER]);
    inNs(['ip', 'addr', 'add', '10.88.0.1/24', 'dev', 'wwan0']);
    inNs(['ip', 'addr', 'add', '192.168.88.1/24', 'dev', 'lan0']);
    for (const d of ['wwan0', 'lan0']) inNs(['ip', 'link', 'set', d, 'up']);
    sh(['ip', '-n', PEER, 'addr', 'add', '10.88.0.2/24', 'dev', 'eth0']);
    for (const d of ['eth0', 'eth1']) sh(['ip', '-n', PEER, 'link', 'set', d, 'up']);
  });
  after(() => {
    for (const n of [NS, PEER])
      try {
        sh(['ip', 'netns', 'del', n]);
      } catch {
        /* gone */
      }
  });

  it('loads (and re-loads) the generated nft table and htb trees on the 4G and LAN interfaces', async () => {
    await qos.apply(spec);
    await qos.apply(spec);
    assert.match(inNs(['nft', 'list', 'table', 'inet', VOICE_TABLE]), /ip dscp set ef/);
    for (const [dev, rate] of [
      ['wwan0', '2Mbit'],
      ['lan0', '8Mbit'],
    ] as const) {
      const classes = inNs(['tc', 'class', 'show', 'dev', dev]);
      assert.match(classes, new RegExp(`class htb 1:1 root rate ${rate}`));
      assert.match(classes, /class htb 1:10 parent 1:1 leaf 10: prio 0 rate 256Kbit/);
      assert.match(inNs(['tc', 'filter', 'show', 'dev', dev]), /match 00b80000\/00fc0000/);
    }
  });

  it('RTP and SIP leaving on 4G are marked EF and go to the voice class; bulk does not', async () => {
    send(1, 40001, 9000); // resolve the peer's MAC first (a packet may wait or drop on ARP)
    const v0 = classPkts('wwan0', '1:10');
    const b0 = classPkts('wwan0', '1:20');
    send(40, 12000, 14000); // RTP-like: both ports in the RTP range
    send(5, 5060, 5060); // SIP
    send(30, 40000, 9000); // something else
    await new Promise((r) => setTimeout(r, 500)); // htb counts a packet when it leaves at the shaped rate
    assert.equal(classPkts('wwan0', '1:10') - v0, 45, 'voice class');
    const bulk = classPkts('wwan0', '1:20') - b0;
    assert.ok(bulk >= 30, `bulk class: ${bulk} (${inNs(['tc', '-s', 'class', 'show', 'dev', 'wwan0'])})`);
  });

  it('remove() leaves neither the table nor the htb trees', async () => {
    await qos.remove();
    assert.equal(await new NftAdapter(nsRunner).listTable('inet', VOICE_TABLE), null);
    for (const dev of ['wwan0', 'lan0']) assert.doesNotMatch(inNs(['tc', 'qdisc', 'show', 'dev', dev]), /htb/);
  });
});
