import assert from 'node:assert/strict';
import { healthOf, reported } from '../../helpers/reports.js';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createUser } from '../../../agent/src/auth/index.js';
import { systemClock } from '../../../common/clock.js';
import { StatusCapability } from '../../../agent/src/status/status.js';
import { WebServer } from '../../../agent/src/web/server.js';
import { buildWebApp, fastifyLogger } from '../../../agent/src/web/app.js';
import { createLogger, type LogEntry } from '../../../common/log.js';
import { createTestCtx, type TestCtx } from '../../helpers/ctx.js';
import { cellularHealth, FakeCap, FakeFailover, recordsHealth, registry, telemetryHealth } from './fixtures.js';
import { FakeSystemInfo } from '../../helpers/fake-system-info.js';

const PW = 'correct horse battery';

describe('status web (inject + one real socket for SSE)', () => {
  let ctx: TestCtx;
  let status: StatusCapability;
  let web: WebServer;
  let app: FastifyInstance;
  let failover: FakeFailover;
  let reboots: string[] = [];
  let rebooted: () => void = () => {};
  const rebootCalled = new Promise<void>((r) => (rebooted = r));
  let drillRuns = 0;

  before(async () => {
    ctx = createTestCtx({
      clock: systemClock,
      config: { status: { listen: '127.0.0.1', port: 0, https: false, refreshMs: 60_000, maxLiveViewers: 3, maxLiveViewersPerIp: 2, maxConnections: 10 } },
    });
    failover = new FakeFailover(() => ctx.bus);
    const drills = new FakeCap('drills', { status: 'ok', summary: 'no drill yet', details: { last: null, next: null, running: false, lines: [] } });
    Object.assign(drills, {
      runNow: async () => {
        drillRuns++;
        return { id: 'd1', at: 1, passed: true, steps: [] };
      },
      history: () => [],
    });
    status = new StatusCapability({ systemInfo: new FakeSystemInfo() });
    const caps = [
      new FakeCap('cellular', cellularHealth()),
      failover,
      new FakeCap('records', recordsHealth(Date.parse('2026-11-27T10:30:00Z'))),
      new FakeCap('telemetry', telemetryHealth()),
      new FakeCap('telephony', healthOf('telephony', { registered: 3, lines: ['3 phones registered'] }, 'ok', 'SIP trunk registered')),
      drills,
      status,
    ];
    ctx.capabilities = registry(caps);
    ctx.control = {
      ...ctx.control,
      reboot: async (r: string) => {
        reboots.push(r);
        rebooted();
      },
    };
    createUser(ctx.db, 'admin', PW, 'admin');
    createUser(ctx.db, 'rec', PW, 'reception');
    await status.start(ctx);
    web = new WebServer();
    await web.start(ctx);
    app = web.app!;
  });
  after(async () => {
    await web?.stop();
    await status.stop();
    ctx.cleanup();
  });

  async function login(u: string) {
    const r = await app.inject({ method: 'POST', url: '/login', payload: { username: u, password: PW } });
    assert.equal(r.statusCode, 200);
    return { cookie: String(r.headers['set-cookie']).split(';')[0]!, csrf: r.json().csrf as string };
  }

  it('serves an accessible page with the state line, cards for every capability, no external assets, under 150 KB', async () => {
    const r = await app.inject({ url: '/' });
    assert.equal(r.statusCode, 200);
    const html = r.body;
    assert.match(html, /<main id="main">/);
    assert.match(html, /role="status" aria-live="polite"/);
    assert.match(html, /All systems normal/);
    assert.match(html, /<html lang="en-GB">/);
    for (const title of ['Internet connections', 'ICB reporting', 'Phones', 'Records', 'Cellular', 'This appliance', 'Backup drills'])
      assert.ok(html.includes(title), title);
    assert.match(html, /Signal -95 dBm \(70%\)/);
    assert.match(html, /data 1\.20 GB of 20\.0 GB/);
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'nothing fetched from another host');
    const js = await app.inject({ url: '/assets/status.js' });
    assert.equal(js.statusCode, 200);
    assert.ok(r.rawPayload.length + js.rawPayload.length < 150 * 1024, `first load ${r.rawPayload.length + js.rawPayload.length} bytes`);
  });

  it('/api/status returns the derived state and every capability', async () => {
    const j = (await app.inject({ url: '/api/status' })).json();
    assert.equal(j.state.level, 'normal');
    assert.equal(j.capabilities.failover.details.active, 'wan');
    assert.equal(j.box.memUsedPct, 40);
  });

  it('/metrics is valid Prometheus text with the right values', async () => {
    const r = await app.inject({ url: '/metrics' });
    assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const declared = new Set<string>();
    for (const line of r.body.trimEnd().split('\n')) {
      const t = /^# TYPE (\S+) (gauge|counter)$/.exec(line);
      if (t) {
        assert.ok(!declared.has(t[1]!), `TYPE once per family: ${t[1]}`);
        declared.add(t[1]!);
        continue;
      }
      if (line.startsWith('# HELP ')) continue;
      const m = /^([a-z_:][a-z0-9_:]*)(\{([a-z_]+="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.]+(e[+-]?[0-9]+)?)$/.exec(line);
      assert.ok(m, `bad sample line: ${line}`);
      assert.ok(declared.has(m[1]!), `sample before its TYPE: ${line}`);
    }
    assert.match(r.body, /^surgery_edge_uplink_active\{uplink="wan",kind="wired"\} 1$/m);
    assert.match(r.body, /^surgery_edge_practice_state\{state="normal"\} 1$/m);
    assert.match(r.body, /^surgery_edge_cellular_data_used_bytes 1200000000$/m);
    assert.match(r.body, /^surgery_edge_telemetry_outbox_depth 3$/m);
  });

  it('admin actions: 401 signed out, 403 for reception or without CSRF, work for admin with CSRF', async () => {
    const body = { uplink: 'lte', minutes: 30 };
    assert.equal((await app.inject({ method: 'POST', url: '/api/actions/force', payload: body })).statusCode, 401);
    const rec = await login('rec');
    assert.equal(
      (await app.inject({ method: 'POST', url: '/api/actions/force', headers: { cookie: rec.cookie, 'x-csrf-token': rec.csrf }, payload: body })).statusCode,
      403,
    );
    const adm = await login('admin');
    assert.equal((await app.inject({ method: 'POST', url: '/api/actions/force', headers: { cookie: adm.cookie }, payload: body })).statusCode, 403);
    assert.equal(failover.forced.length, 0);
    const ok = await app.inject({ method: 'POST', url: '/api/actions/force', headers: { cookie: adm.cookie, 'x-csrf-token': adm.csrf }, payload: body });
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(failover.forced, [{ uplink: 'lte', ms: 30 * 60_000 }]);
    const bad = await app.inject({
      method: 'POST',
      url: '/api/actions/force',
      headers: { cookie: adm.cookie, 'x-csrf-token': adm.csrf },
      payload: { uplink: 'nope', minutes: 30 },
    });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json().message, /wan, lte/);
    const badMin = await app.inject({
      method: 'POST',
      url: '/api/actions/force',
      headers: { cookie: adm.cookie, 'x-csrf-token': adm.csrf },
      payload: { uplink: 'lte', minutes: 99999 },
    });
    assert.equal(badMin.statusCode, 400);
    const drill = await app.inject({ method: 'POST', url: '/api/actions/drill', headers: { cookie: adm.cookie, 'x-csrf-token': adm.csrf } });
    assert.equal(drill.statusCode, 200);
    assert.equal(drillRuns, 1);
    const form = await app.inject({
      method: 'POST',
      url: '/api/actions/reboot',
      headers: { cookie: adm.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: `_csrf=${encodeURIComponent(adm.csrf)}&confirm=yes`,
    });
    assert.equal(form.statusCode, 303);
    assert.deepEqual(reboots, [], 'answered before rebooting');
    await rebootCalled; // the 200 ms timer fires the reboot
    assert.deepEqual(reboots, ['status page (admin)']);
    const page = await app.inject({ url: '/', headers: { cookie: adm.cookie } });
    assert.match(page.body, /Run a drill now/);
    assert.match(page.body, new RegExp(`name="_csrf" value="${adm.csrf}"`));
  });

  it('bad input: malformed, oversized, wrong type -> clear 4xx, logged, still serving', async () => {
    const adm = await login('admin');
    const h = { cookie: adm.cookie, 'x-csrf-token': adm.csrf, 'content-type': 'application/json' };
    assert.equal((await app.inject({ method: 'POST', url: '/api/actions/force', headers: h, payload: '{"uplink":' })).statusCode, 400);
    assert.equal(
      (await app.inject({ method: 'POST', url: '/api/actions/force', headers: h, payload: JSON.stringify({ pad: 'x'.repeat(100_000) }) })).statusCode,
      413,
    );
    assert.equal((await app.inject({ method: 'POST', url: '/api/actions/force', headers: h, payload: '[1,2,3]' })).statusCode, 400);
    assert.equal((await app.inject({ method: 'GET', url: '/api/nothing-here' })).statusCode, 404);
    assert.equal((await app.inject({ method: 'GET', url: '/?msg=<script>alert(1)</script>' })).body.includes('<script>alert'), false);
    for (const k of ['constructor', '__proto__', 'toString']) assert.doesNotMatch((await app.inject({ url: `/?msg=${k}` })).body, /class="flash"/, k);
    assert.match((await app.inject({ url: '/?msg=forced' })).body, /class="flash" role="alert">Uplink forced/);
    assert.ok(ctx.logged.some((e) => e.msg === 'request refused' && e.status === 413));
    assert.equal((await app.inject({ url: '/api/status' })).statusCode, 200);
  });

  it('unparseable HTTP (garbage request line, huge headers) gets 400/431 on a real socket, logged, still serving', async () => {
    const raw = (data: string) =>
      new Promise<string>((resolve, reject) => {
        const s = connect(web.port!, '127.0.0.1', () => s.end(data));
        let got = '';
        s.on('data', (b) => (got += b.toString()));
        s.on('close', () => resolve(got));
        s.on('error', reject);
      });
    assert.match(await raw('GARBAGE \\x00\r\n\r\n'), /^HTTP\/1\.1 400 /);
    assert.match(await raw(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`), /^HTTP\/1\.1 431 /);
    assert.ok(ctx.logged.some((e) => e.msg === 'malformed request refused' && e.status === 431));
    const ok = await raw('GET /api/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(ok, /^HTTP\/1\.1 200 /);
  });

  it('pushes a new state over SSE when failover switches', async () => {
    const frames: string[] = [];
    const port = web.port!;
    const req = httpRequest({ host: '127.0.0.1', port, path: '/api/events' });
    const got = new Promise<void>((resolve, reject) => {
      req.on('response', (res) => {
        assert.match(String(res.headers['content-type']), /text\/event-stream/);
        assert.match(String(res.headers['content-security-policy']), /default-src 'self'/);
        res.setEncoding('utf8');
        let buf = '';
        res.on('data', (chunk: string) => {
          buf += chunk;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const frame = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const data = /^data: (.*)$/m.exec(frame)?.[1];
            if (!data) continue;
            frames.push(data);
            if (frames.length === 1) failover.switchTo('lte', Date.now(), 'down', 'up');
            if (JSON.parse(data).level === 'backup') resolve();
          }
        });
      });
      req.on('error', reject);
    });
    req.end();
    const t0 = Date.now();
    await got;
    assert.ok(Date.now() - t0 < 2000, 'pushed within 2 s');
    const last = JSON.parse(frames.at(-1)!);
    assert.match(last.text, /^Internet down - running on 4G backup since \d\d:\d\d$/);
    assert.match(last.cardsHtml, /lte <strong>\(in use\)<\/strong>/);
    req.destroy();
    failover.switchTo('wan', Date.now(), 'up', 'up');
  });

  /** Open an SSE stream from a given loopback source address; resolves with the status code once headers arrive. */
  function openStream(from: string) {
    const req = httpRequest({ host: '127.0.0.1', port: web.port!, path: '/api/events', localAddress: from });
    const res = new Promise<IncomingMessage>((resolve, reject) => {
      req.on('response', resolve);
      req.on('error', reject);
    });
    req.end();
    return { req, res };
  }

  it('caps live status streams per device (429) and in total (503); a closed stream frees its slot', async () => {
    const opened: ReturnType<typeof openStream>[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const s = openStream('127.0.0.1');
        opened.push(s);
        assert.equal((await s.res).statusCode, 200);
      }
      const third = openStream('127.0.0.1');
      opened.push(third);
      assert.equal((await third.res).statusCode, 429, 'per-device cap');
      const other = openStream('127.0.0.2');
      opened.push(other);
      assert.equal((await other.res).statusCode, 200);
      const full = openStream('127.0.0.3');
      opened.push(full);
      assert.equal((await full.res).statusCode, 503, 'total cap');
      assert.equal(reported(status).details?.liveViewers, 3);
      // Close one: once the server has seen the close, that device may open a stream again.
      const gone = new Promise((r) => opened[0]!.req.socket!.once('close', r));
      opened[0]!.req.destroy();
      await gone;
      let code = 0;
      for (let i = 0; i < 50 && code !== 200; i++) {
        const again = openStream('127.0.0.1');
        opened.push(again);
        code = (await again.res).statusCode ?? 0;
        if (code !== 200) await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(code, 200, 'slot released');
    } finally {
      for (const s of opened) s.req.destroy();
    }
  });

  it('drops a live status client that stops reading instead of buffering for ever', async () => {
    const realPayload = status.payload.bind(status);
    const big = JSON.stringify({ level: 'normal', pad: 'x'.repeat(1024 * 1024) });
    status.payload = () => big;
    const s = openStream('127.0.0.4');
    try {
      const res = await s.res;
      assert.equal(res.statusCode, 200);
      res.pause(); // a browser tab that hangs: never reads again
      let dropped = false;
      for (let i = 0; i < 40 && !dropped; i++) {
        (status as unknown as { push(): void }).push();
        await new Promise((r) => setImmediate(r));
        dropped = ctx.logged.some((e) => e.msg === 'live status page not reading: dropped');
      }
      assert.ok(dropped, 'dropped and logged');
      assert.equal(reported(status).details?.liveViewers, 0, 'unsubscribed');
    } finally {
      status.payload = realPayload;
      s.req.destroy();
    }
  });

  it('a flood of idle connections is refused past maxConnections (logged) and the server serves again once they go', async () => {
    const connections = () => new Promise<number>((r, j) => app.server.getConnections((e, n) => (e ? j(e) : r(n))));
    for (let i = 0; i < 100 && (await connections()) > 0; i++) await new Promise((r) => setTimeout(r, 20));
    const socks: Socket[] = [];
    try {
      for (let i = 0; i < 10; i++) {
        const s = connect(web.port!, '127.0.0.1');
        socks.push(s);
        await new Promise((r) => s.once('connect', r));
      }
      for (let i = 0; i < 100 && (await connections()) < 10; i++) await new Promise((r) => setTimeout(r, 10));
      const extra = connect(web.port!, '127.0.0.1');
      socks.push(extra);
      extra.on('error', () => {});
      let got = '';
      extra.on('data', (b) => (got += b.toString()));
      extra.on('connect', () => extra.write('GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n'));
      await new Promise((r) => extra.once('close', r));
      assert.equal(got, '', 'the 11th connection is closed unanswered');
      assert.ok(ctx.logged.some((e) => e.msg === 'too many connections: refusing new ones'));
    } finally {
      for (const s of socks) s.destroy();
    }
    for (let i = 0; i < 100 && (await connections()) > 0; i++) await new Promise((r) => setTimeout(r, 20));
    const ok = await new Promise<number>((resolve, reject) =>
      httpRequest({ host: '127.0.0.1', port: web.port!, path: '/api/status' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end(),
    );
    assert.equal(ok, 200);
  });
});

describe('web server logging at debug level', () => {
  it('never logs query strings, cookies or whole request objects, even with log.level debug', async () => {
    const ctx = createTestCtx();
    const entries: LogEntry[] = [];
    ctx.log = createLogger({ level: 'debug', sink: (e) => entries.push(e) });
    createUser(ctx.db, 'admin', PW, 'admin');
    const app = await buildWebApp(ctx, { https: false });
    try {
      const signin = await app.inject({ method: 'POST', url: '/login', payload: { username: 'admin', password: PW } });
      const cookie = String(signin.headers['set-cookie']).split(';')[0]!;
      await app.inject({ url: '/records/search?q=Smith%20John%209434765919', headers: { cookie } });
      await app.inject({ method: 'POST', url: '/api/nothing?nhs=9434765919', headers: { cookie, 'content-type': 'application/json' }, payload: '{"bad json' });
      fastifyLogger(ctx.log).error({ req: { url: '/records/patient?id=9434765919', headers: { cookie } }, url: '/x?q=Smith', err: new Error('boom') }, 'oops');
      const all = JSON.stringify(entries);
      assert.ok(
        entries.some((e) => e.msg === 'request refused'),
        'refusals are still logged',
      );
      assert.ok(entries.some((e) => e.msg === 'oops' && e.url === '/x' && e.err === 'boom'));
      for (const secret of ['9434765919', 'Smith', cookie.split('=')[1]!]) assert.ok(!all.includes(secret), `logged: ${secret}`);
    } finally {
      await app.close();
      ctx.cleanup();
    }
  });
});
