import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { MqttClient } from 'mqtt';
import { brokerStream, brokerTarget, MqttLink } from '../../../agent/src/telemetry/mqtt-link.js';
import { onPath } from '../../lab/tools.js';
import { createTestCtx } from '../../helpers/ctx.js';
import { FakeClock } from '../../helpers/fake-clock.js';

describe('MQTT link reconnects', () => {
  it('walks the broker list after each failed connect, with growing jittered backoff (not a fixed period)', async () => {
    const clock = new FakeClock();
    const ctx = createTestCtx({ clock });
    // Two loopback ports nothing listens on: each connect is refused at once (real sockets).
    const brokers = ['mqtt://127.0.0.1:1', 'mqtt://127.0.0.1:2'];
    const wills: number[] = [];
    const link = new MqttLink({
      brokers,
      clientId: 'dev-x',
      tls: {},
      keepaliveS: 30,
      connectTimeoutMs: 2000,
      backoff: { initialMs: 100, maxMs: 10_000 },
      clock,
      log: ctx.log,
      will: () => (wills.push(wills.length), { topic: 't/state', payload: '{}' }),
      onConnect: () => assert.fail('nothing should connect'),
      onMessage: () => {},
      onDisconnect: () => {},
    });
    const failures = () => ctx.logged.filter((e) => e.msg === 'broker connect failed') as unknown as { broker: string; retryInMs: number }[];
    try {
      link.start();
      for (let i = 1; i <= 8; i++) {
        const deadline = Date.now() + 5000;
        while (failures().length < i) {
          if (Date.now() > deadline) assert.fail(`attempt ${i} never failed`);
          await new Promise((r) => setTimeout(r, 10));
        }
        await clock.advance(failures()[i - 1]!.retryInMs);
      }
      const f = failures().slice(0, 8);
      assert.deepEqual(
        f.map((x) => x.broker),
        [0, 1, 0, 1, 0, 1, 0, 1].map((i) => brokers[i]),
      );
      f.forEach((x, k) => assert.ok(x.retryInMs <= Math.min(10_000, 100 * 2 ** k), `delay ${k} within its cap`));
      assert.ok(Math.max(...f.slice(4).map((x) => x.retryInMs)) > 400, 'later delays grow beyond the first caps');
      assert.ok(wills.length >= 8);
      assert.equal(wills.length, link.attempts, 'a fresh Will (bdSeq) per attempt');
    } finally {
      await link.stop();
      ctx.cleanup();
    }
  });
});

describe('broker URL', () => {
  it('becomes MQTT.js options as url.parse gave them (so MQTT.js never calls the deprecated url.parse)', () => {
    assert.deepEqual(brokerTarget('mqtts://broker.example:8883'), { protocol: 'mqtts', host: 'broker.example', hostname: 'broker.example', port: 8883 });
    // No port: MQTT.js picks the protocol's default (1883 / 8883).
    assert.deepEqual(brokerTarget('mqtt://10.0.0.1'), { protocol: 'mqtt', host: '10.0.0.1', hostname: '10.0.0.1' });
    assert.deepEqual(brokerTarget('mqtts://[::1]:8884'), { protocol: 'mqtts', host: '::1', hostname: '::1', port: 8884 });
    assert.deepEqual(brokerTarget('wss://u%40x:p%3Aw@fleet.example/mqtt?a=1'), {
      protocol: 'wss',
      host: 'fleet.example',
      hostname: 'fleet.example',
      path: '/mqtt?a=1',
      username: 'u@x',
      password: 'p:w',
    });
  });
});

// brokerStream stands in for MQTT.js's own tcp/tls builders (so mqtt.connect() never loads its
// WebSocket and SOCKS modules): the same TLS rules, checked against real TLS servers.
describe('broker stream (mqtt:// and mqtts:// without mqtt.connect)', { skip: !onPath('openssl') && 'openssl is not installed' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'se-mqtt-tls-'));
  const selfSigned = (name: string) => {
    const key = join(dir, `${name}.key`);
    const cert = join(dir, `${name}.crt`);
    const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1'];
    const r = spawnSync('openssl', [...args, '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return { key: readFileSync(key), cert: readFileSync(cert) };
  };
  const broker = selfSigned('broker');
  const stranger = selfSigned('stranger');
  const device = selfSigned('device');
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A TLS server that records the SNI name it was asked for; resolves with its port. */
  async function tlsServer(): Promise<{ port: number; sni: string[]; close: () => void }> {
    const sni: string[] = [];
    const server = createTlsServer({ key: broker.key, cert: broker.cert }, (s) => {
      sni.push(String(s.servername));
      s.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { port: (server.address() as AddressInfo).port, sni, close: () => server.close() };
  }
  const fakeClient = () => {
    const c = new EventEmitter();
    const errors: Error[] = [];
    c.on('error', (e: Error) => errors.push(e));
    return { client: c as unknown as MqttClient, errors };
  };

  it('mqtts:// to a host name: SNI, the CA checked, connected', async () => {
    const srv = await tlsServer();
    try {
      const { client, errors } = fakeClient();
      const s = brokerStream(client, brokerTarget(`mqtts://localhost:${srv.port}`), { ca: broker.cert }) as TLSSocket;
      await once(s, 'secureConnect');
      assert.equal(s.authorized, true);
      await once(s, 'close');
      assert.deepEqual(srv.sni, ['localhost']);
      assert.deepEqual(errors, []);
    } finally {
      srv.close();
    }
  });

  it('a broker certificate from another CA is an error on the client, and the connection ends', async () => {
    const srv = await tlsServer();
    try {
      const { client, errors } = fakeClient();
      const s = brokerStream(client, brokerTarget(`mqtts://localhost:${srv.port}`), { ca: stranger.cert });
      await new Promise((r) => s.on('close', r)); // not once(): the socket's own 'error' would reject it
      assert.equal(errors.length, 1);
      assert.match(errors[0]!.message, /self-signed|unable to verify|certificate/i);
    } finally {
      srv.close();
    }
  });

  it('mqtt:// with a client certificate is TLS (as mqtt.connect() upgrades it); without one, plain TCP', async () => {
    const srv = await tlsServer();
    const plainBytes: Buffer[] = [];
    const plain = createNetServer((s) => s.on('data', (b: Buffer) => (plainBytes.push(b), s.end())));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    try {
      const { client } = fakeClient();
      const s = brokerStream(client, brokerTarget(`mqtt://localhost:${srv.port}`), { ca: broker.cert, cert: device.cert, key: device.key }) as TLSSocket;
      await once(s, 'secureConnect');
      assert.equal(s.encrypted, true);
      const t = brokerStream(fakeClient().client, brokerTarget(`mqtt://127.0.0.1:${(plain.address() as AddressInfo).port}`), {});
      t.end('CONNECT');
      await once(t, 'close');
      assert.equal(Buffer.concat(plainBytes).toString(), 'CONNECT');
    } finally {
      srv.close();
      plain.close();
    }
  });
});
