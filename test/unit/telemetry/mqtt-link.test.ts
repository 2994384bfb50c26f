import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { brokerTarget, MqttLink } from '../../../agent/src/telemetry/mqtt-link.js';
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
