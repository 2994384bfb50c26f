import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parseMonitorLine } from '../../../agent/src/platform/netlink-monitor.js';
import { encodeDnsQuery, NetProber, parsePingRtt } from '../../../agent/src/uplinks/probes.js';
import { FakeRunner } from '../../helpers/fake-runner.js';

const src = { address: '127.0.0.1', iface: 'lo' };

describe('probes (real sockets on loopback, bound to the source address)', () => {
  let httpPort = 0;
  let dnsPort = 0;
  const http = createServer((req, res) => res.writeHead(req.url === '/generate_204' ? 204 : 500).end());
  const dns = createSocket('udp4');
  const sources: string[] = [];
  before(async () => {
    http.on('connection', (s) => sources.push(s.remoteAddress ?? ''));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    httpPort = (http.address() as AddressInfo).port;
    dns.on('message', (q, rinfo) => {
      const a = Buffer.from(q);
      a[2] = 0x81;
      dns.send(a, rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => dns.bind(0, '127.0.0.1', r));
    dnsPort = dns.address().port;
  });
  after(() => {
    http.close();
    dns.close();
  });

  it('tcp: connect ok, refused/unreachable fails', async () => {
    const p = new NetProber(new FakeRunner());
    const ok = await p.probe({ kind: 'tcp', host: '127.0.0.1', port: httpPort }, src, 1000);
    assert.equal(ok.ok, true);
    assert.ok(sources.includes('127.0.0.1'), 'left from the bound source address');
    const bad = await p.probe({ kind: 'tcp', host: '127.0.0.1', port: 1 }, src, 1000);
    assert.equal(bad.ok, false);
    assert.equal(bad.error, 'ECONNREFUSED');
  });

  it('http: expected status passes, another status fails', async () => {
    const p = new NetProber(new FakeRunner());
    assert.equal((await p.probe({ kind: 'http', host: '127.0.0.1', port: httpPort, path: '/generate_204', expectStatus: 204 }, src, 1000)).ok, true);
    const r = await p.probe({ kind: 'http', host: '127.0.0.1', port: httpPort, path: '/x', expectStatus: 204 }, src, 1000);
    assert.equal(r.ok, false);
    assert.match(r.error ?? '', /status 500/);
  });

  it('dns: a reply with our id passes; silence times out', async () => {
    const p = new NetProber(new FakeRunner());
    assert.equal((await p.probe({ kind: 'dns', host: '127.0.0.1', port: dnsPort, query: 'nhs.uk' }, src, 1000)).ok, true);
    const silent = createSocket('udp4');
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r));
    const r = await p.probe({ kind: 'dns', host: '127.0.0.1', port: silent.address().port }, src, 150);
    silent.close();
    assert.deepEqual([r.ok, r.error], [false, 'timeout']);
    const q = encodeDnsQuery(0x1234, 'nhs.uk');
    assert.deepEqual([...q.subarray(12, 20)], [3, 0x6e, 0x68, 0x73, 2, 0x75, 0x6b, 0]);
  });

  it('icmp: ping -I <source> with the real output format', async () => {
    const runner = new FakeRunner().on('ping', (args) =>
      args.includes('198.51.100.9')
        ? { code: 1, stdout: '\n--- 198.51.100.9 ping statistics ---\n1 packets transmitted, 0 received, 100% packet loss, time 0ms\n' }
        : {
            stdout:
              'PING 198.51.100.1 (198.51.100.1) from 10.0.1.2 : 56(84) bytes of data.\n\n--- 198.51.100.1 ping statistics ---\n1 packets transmitted, ' +
              '1 received, 0% packet loss, time 0ms\nrtt min/avg/max/mdev = 0.041/0.052/0.060/0.000 ms\n',
          },
    );
    const p = new NetProber(runner);
    const ok = await p.probe({ kind: 'icmp', host: '198.51.100.1' }, { address: '10.0.1.2', iface: 'wan0' }, 500);
    assert.deepEqual([ok.ok, ok.rttMs], [true, 0.052]);
    assert.deepEqual(runner.calls[0]!.args.slice(-3), ['-I', '10.0.1.2', '198.51.100.1']);
    assert.equal((await p.probe({ kind: 'icmp', host: '198.51.100.9' }, src, 500)).ok, false);
    assert.equal(parsePingRtt('nothing'), null);
  });

  it('parses `ip -o monitor link` lines', () => {
    assert.deepEqual(parseMonitorLine('3: wan0@peer0: <NO-CARRIER,BROADCAST,MULTICAST,UP,M-DOWN> mtu 1500 qdisc noqueue state LOWERLAYERDOWN group default'), {
      ifname: 'wan0',
      carrier: false,
      deleted: false,
    });
    assert.deepEqual(parseMonitorLine('3: wan0@peer0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 state UP'), { ifname: 'wan0', carrier: true, deleted: false });
    assert.deepEqual(parseMonitorLine('Deleted 4: wwan0: <BROADCAST,MULTICAST> mtu 1500'), { ifname: 'wwan0', carrier: false, deleted: true });
    assert.equal(parseMonitorLine('    link/ether d6:bb:ae:96:bb:64'), null);
  });
});
