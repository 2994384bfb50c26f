/**
 * NetProber's late-answer contract on real loopback sockets: the first result comes at the
 * timeout (fast failure runs), the answer that arrives later reaches onLate as a success with its
 * real round trip (latency, not loss), and silence ends in one final failure.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { NetProber, type ProbeResult } from '../../../agent/src/uplinks/probes.js';
import { FakeRunner } from '../../helpers/fake-runner.js';

const src = { address: '127.0.0.1', iface: 'lo' };

describe('late answers (real sockets on loopback)', () => {
  let httpPort = 0;
  let dnsPort = 0;
  const http = createServer((_req, res) => setTimeout(() => res.writeHead(204).end(), 300));
  const dns = createSocket('udp4');
  before(async () => {
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    httpPort = (http.address() as AddressInfo).port;
    // Answers only queries whose id is even, after 250 ms: one late, one never.
    dns.on('message', (q, rinfo) => {
      if (q.readUInt16BE(0) % 2) return;
      const a = Buffer.from(q);
      a[2] = 0x81;
      setTimeout(() => dns.send(a, rinfo.port, rinfo.address), 250);
    });
    await new Promise<void>((r) => dns.bind(0, '127.0.0.1', r));
    dnsPort = dns.address().port;
  });
  after(() => {
    http.close();
    dns.close();
  });

  it('http answering after 300 ms with a 100 ms timeout: pending at the timeout, then a late success with the real round trip', async () => {
    const p = new NetProber(new FakeRunner());
    let late: ProbeResult | undefined;
    const gotLate = new Promise<void>((res) => {
      const t0 = performance.now();
      void p
        .probe({ kind: 'http', host: '127.0.0.1', port: httpPort, path: '/', expectStatus: 204 }, src, 100, {
          graceMs: 2000,
          onLate: (r) => {
            late = r;
            res();
          },
        })
        .then((first) => {
          assert.equal(first.ok, false);
          assert.equal(first.pending, true);
          assert.ok(performance.now() - t0 < 250, 'the first result comes at the timeout, not with the answer');
        });
    });
    await gotLate;
    assert.equal(late?.ok, true);
    assert.ok(late!.rttMs >= 290, `rtt ${late!.rttMs}`);
  });

  it('without a grace period the same probe is a plain failure (the old behaviour)', async () => {
    const p = new NetProber(new FakeRunner());
    const r = await p.probe({ kind: 'http', host: '127.0.0.1', port: httpPort, path: '/', expectStatus: 204 }, src, 100);
    assert.equal(r.ok, false);
    assert.equal(r.pending, undefined);
  });

  it('dns never answered: pending, then one final failure after the grace period', async () => {
    const p = new NetProber(new FakeRunner());
    // Ids are random: probe until both an even (answered late) and an odd (silent) id were seen.
    const results: ProbeResult[] = [];
    const both = () => results.some((r) => r.ok) && results.some((r) => !r.ok);
    for (let i = 0; i < 40 && !both(); i++) {
      const done = new Promise<ProbeResult>((res) => {
        void p.probe({ kind: 'dns', host: '127.0.0.1', port: dnsPort, query: 'nhs.uk' }, src, 50, { graceMs: 400, onLate: res });
      });
      results.push(await done);
    }
    assert.ok(
      results.some((r) => r.ok && r.rttMs >= 240),
      'even ids: answered late, as a success',
    );
    assert.ok(
      results.some((r) => !r.ok),
      'odd ids: lost after the grace period',
    );
  });
});
