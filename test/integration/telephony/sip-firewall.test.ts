/**
 * The SIP firewall table (agent/src/telephony/sip-firewall.ts) loaded by the real nft into a
 * network namespace, with a UDP responder on the SIP port standing in for kamailio: the LAN side is
 * answered, the WAN side is not (except a configured peer), and a flooding LAN source is cut off
 * without starving another handset.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { sipFirewallScript, SIP_TABLE } from '../../../agent/src/telephony/sip-firewall.js';
import { requireRoot } from '../../helpers/ctx.js';

const skip = requireRoot();
const NS = { app: 'tpfw-app', lan: 'tpfw-lan', wan: 'tpfw-wan' };
const PORT = 5060;
const sh = (args: string[], input?: string) => execFileSync(args[0]!, args.slice(1), { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'ignore'] });
const inNs = (ns: string, args: string[], input?: string) => sh(['ip', 'netns', 'exec', ns, ...args], input);

/** Sends `count` datagrams from `src` (bound) to the appliance; returns how many were answered. */
function probe(ns: string, src: string, dst: string, count = 1, gapMs = 50): number {
  const js = `const s=require('dgram').createSocket('udp4');let got=0;s.on('message',()=>got++);
s.bind(0,'${src}',async()=>{for(let i=0;i<${count};i++){
s.send('OPTIONS sip:x SIP/2.0\\r\\n\\r\\n',${PORT},'${dst}');await new Promise(r=>setTimeout(r,${gapMs}));}
setTimeout(()=>{console.log(got);s.close();},300);});`;
  return Number(inNs(ns, [process.execPath, '-e', js]).trim());
}

describe('SIP firewall (real nft, namespaces)', { skip }, () => {
  let responder: ChildProcess | undefined;
  before(() => {
    for (const n of Object.values(NS)) {
      try {
        sh(['ip', 'netns', 'del', n]);
      } catch {
        /* not there */
      }
      sh(['ip', 'netns', 'add', n]);
    }
    sh(['ip', 'link', 'add', 'lan0', 'netns', NS.app, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS.lan]);
    sh(['ip', 'link', 'add', 'wan0', 'netns', NS.app, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS.wan]);
    for (const [ns, dev, addrs] of [
      [NS.app, 'lan0', ['192.168.77.1/24']],
      [NS.lan, 'eth0', ['192.168.77.10/24', '192.168.77.11/24']],
      [NS.app, 'wan0', ['10.77.0.1/24']],
      [NS.wan, 'eth0', ['10.77.0.2/24', '10.77.0.3/24']],
    ] as const) {
      for (const a of addrs) inNs(ns, ['ip', 'addr', 'add', a, 'dev', dev]);
      inNs(ns, ['ip', 'link', 'set', dev, 'up']);
      inNs(ns, ['ip', 'link', 'set', 'lo', 'up']);
    }
    inNs(NS.app, ['nft', '-f', '-'], sipFirewallScript({ lanInterface: 'lan0', port: PORT, packetsPerSecond: 20, burst: 10, trustedPeers: ['10.77.0.3'] }));
    responder = spawn(
      'ip',
      [
        'netns',
        'exec',
        NS.app,
        process.execPath,
        '-e',
        `const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send('SIP/2.0 200 OK\\r\\n\\r\\n',r.port,r.address));` +
          `s.bind(${PORT},'0.0.0.0',()=>console.log('ready'));`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    return new Promise<void>((res) => responder!.stdout!.once('data', () => res()));
  });
  after(() => {
    responder?.kill('SIGKILL');
    for (const n of Object.values(NS))
      try {
        sh(['ip', 'netns', 'del', n]);
      } catch {
        /* gone */
      }
  });

  const counter = (name: string) => Number(/packets (\d+)/.exec(inNs(NS.app, ['nft', 'list', 'counter', 'inet', SIP_TABLE, name]))?.[1] ?? -1);

  test('a LAN handset is answered on the SIP port', () => {
    assert.equal(probe(NS.lan, '192.168.77.10', '192.168.77.1', 3), 3);
  });

  test('SIP from the WAN side is dropped before the server sees it; the configured PBX gets through', () => {
    const before = counter('wan_dropped');
    assert.equal(probe(NS.wan, '10.77.0.2', '10.77.0.1', 3), 0, 'an unknown WAN source must get no answer');
    assert.equal(counter('wan_dropped') - before, 3);
    assert.equal(probe(NS.wan, '10.77.0.3', '10.77.0.1', 2), 2, 'the configured peer (PBX/trunk) is answered');
  });

  test('a flooding LAN source is cut off; another handset is still answered', () => {
    const before = counter('flood_dropped');
    const answered = probe(NS.lan, '192.168.77.10', '192.168.77.1', 300, 0);
    assert.ok(answered < 100, `a 300-packet burst must be limited (20/s, burst 10): ${answered} answered`);
    assert.ok(counter('flood_dropped') - before >= 200, 'the drops are counted');
    assert.equal(probe(NS.lan, '192.168.77.11', '192.168.77.1', 3), 3, 'another handset is not starved');
  });
});
