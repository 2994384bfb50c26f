import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { request } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../../../common/clock.js';
import { hashPassword } from '../../../common/password.js';
import { Fleet } from '../../../fleet/src/fleet.js';
import type { Derived, Inbound } from '../../../fleet/src/store/types.js';
import { fleetConfig, fleetLog, tempDir, waitFor } from '../../helpers/fleet.js';
import { mosquittoMissing, startBroker, type TestBroker } from '../../helpers/mosquitto.js';
import { telemetryInbound } from '../../helpers/fleet-inbound.js';

/**
 * Issue 17, triage, against the real fleet server (HTTPS, real mosquitto): the worst-first list,
 * its live stream (server-sent events) and the stream's respect for sign-out and idle timeouts,
 * alert filters, bulk acknowledge, snooze and maintenance windows with every change audited and
 * every refusal (role, CSRF, cleared alert) holding, and the confirmation step on disruptive commands.
 */
const PW = 'triage web password';
const MIN = 60_000;
interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

describe('fleet triage over the real HTTPS dashboard', { skip: mosquittoMissing() }, () => {
  let broker: TestBroker;
  let fleet: Fleet;
  let tmp: ReturnType<typeof tempDir>;
  let ca: Buffer;
  let port: number;
  let skew = 0;
  const cookies: Record<string, string> = {};
  const csrfs: Record<string, string> = {};

  const send = (method: string, path: string, o: { form?: Record<string, string>; as?: string } = {}): Promise<Res> =>
    new Promise((res, rej) => {
      const body = o.form ? new URLSearchParams(o.form).toString() : undefined;
      const headers = { ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}), ...(o.as ? { cookie: cookies[o.as]! } : {}) };
      const r = request({ host: '127.0.0.1', port, path, method, ca, servername: 'localhost', headers }, (m) => {
        let b = '';
        m.on('data', (c: Buffer) => (b += c.toString()));
        m.on('end', () => res({ status: m.statusCode!, headers: m.headers, body: b }));
      });
      r.on('error', rej);
      r.end(body);
    });
  const post = (path: string, as: string, form: Record<string, string> = {}) => send('POST', path, { as, form: { csrf: csrfs[as]!, ...form } });
  const signIn = async (u: string) => {
    const r = await send('POST', '/login', { form: { username: u, password: PW, next: '/' } });
    assert.equal(r.status, 303, `sign-in ${u}`);
    cookies[u] = String(r.headers['set-cookie']).split(';')[0]!;
    csrfs[u] = /name="csrf" value="([^"]+)"/.exec((await send('GET', '/', { as: u })).body)![1]!;
  };

  /** An open event stream: events parsed as they arrive. */
  const stream = (path: string, as: string) =>
    new Promise<{ res: IncomingMessage; events: { event: string; data: string }[]; ended: Promise<void>; close: () => void }>((resolve, reject) => {
      const r = request(
        { host: '127.0.0.1', port, path, method: 'GET', ca, servername: 'localhost', headers: { cookie: cookies[as]!, accept: 'text/event-stream' } },
        (res) => {
          const events: { event: string; data: string }[] = [];
          let buf = '';
          res.on('data', (c: Buffer) => {
            buf += c.toString();
            let i;
            while ((i = buf.indexOf('\n\n')) >= 0) {
              const block = buf.slice(0, i);
              buf = buf.slice(i + 2);
              const event = /^event: (.*)$/m.exec(block)?.[1];
              const data = /^data: (.*)$/m.exec(block)?.[1];
              if (event && data !== undefined) events.push({ event, data });
            }
          });
          const ended = new Promise<void>((done) => res.on('close', () => done()));
          resolve({ res, events, ended, close: () => r.destroy() });
        },
      );
      r.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(e)));
      r.end();
    });

  const tele = (id: string, at: number, o: Partial<Derived>): Inbound => telemetryInbound(id, at, fleet.ctx.inventory.place(id), o);
  const birth = (id: string, online: boolean, at: number): Inbound => ({
    kind: 'state',
    deviceId: id,
    receivedAt: at,
    place: fleet.ctx.inventory.place(id),
    msg: { online, bootId: 'b', bdSeq: 1, at },
  });
  const flash = (r: Res, k: 'done' | 'error') => new URL(String(r.headers.location), 'https://x').searchParams.get(k) ?? '';
  const auditRows = async (action: string) => (await fleet.ctx.store.accounts.auditLog(500)).filter((a) => a.action === action);

  before(async () => {
    broker = await startBroker([]);
    tmp = tempDir();
    const config = fleetConfig(broker, tmp.dir, {
      http: { port: 0, tls: { enabled: true }, liveMs: 150, idleTimeoutMs: 30 * MIN, sessionTtlMs: 3_600_000 },
      alerts: { offlineMin: 15, cellularMin: 30 },
      mqtt: { commandTimeoutMs: 1000 },
      inventory: [
        { deviceId: 'Y00002-01', practice: 'Y00002', practiceName: 'Canal Side', pcn: 'PCN-S', clinicalSystem: 'SystmOne' },
        { deviceId: 'Y00003-01', practice: 'Y00003', practiceName: 'Hill Top', pcn: 'PCN-S', clinicalSystem: 'EMIS' },
      ],
    });
    fleet = new Fleet({ config, log: fleetLog(), clock: { ...systemClock, now: () => Date.now() + skew } });
    await fleet.start();
    for (const [u, role, practice] of [
      ['amy', 'icb-admin', null],
      ['vic', 'icb-viewer', null],
      ['pam', 'practice-manager', 'Y00003'],
    ] as const)
      await fleet.ctx.store.accounts.putUser({ username: u, hash: hashPassword(PW), role, practice }, Date.now());
    ca = fleet.web.tls!.cert;
    port = Number(new URL(fleet.web.url).port);
    const now = Date.now();
    await fleet.ctx.store.devices.ingest([
      birth('Y00001-01', true, now - 60 * MIN),
      tele('Y00001-01', now - MIN, {}),
      birth('Y00002-01', true, now - 60 * MIN),
      tele('Y00002-01', now - MIN, { activeKind: 'cellular', activeUplink: '4g', cellularSince: now - 45 * MIN, dataPct: 97 }),
      birth('Y00003-01', true, now - 60 * MIN),
      tele('Y00003-01', now - 3 * 60 * MIN, { recordsStale: true }),
      birth('Y00003-01', false, now - 2 * 60 * MIN),
      birth('Y00004-01', true, now - 60 * MIN),
      tele('Y00004-01', now - MIN, { recordsStale: true }),
    ]);
    await fleet.alerts.evaluate();
    for (const u of ['amy', 'vic', 'pam']) await signIn(u);
  });
  let stopped = false;
  after(async () => {
    if (!stopped) await fleet?.stop();
    await broker?.close();
    tmp?.rm();
  });

  const rowIds = (html: string) => [...html.matchAll(/<tr data-device="([^"]+)"/g)].map((m) => m[1]);
  const row = (html: string, id: string) => new RegExp(`<tr data-device="${id}"[^>]*>[\\s\\S]*?</tr>`).exec(html)![0];

  it('lists worst first (offline, on 4G, records stale, fine), sorts by any column, shows last seen; offline values are last-known, never green', async () => {
    const r = await send('GET', '/', { as: 'vic' });
    assert.equal(r.status, 200);
    assert.deepEqual(rowIds(r.body), ['Y00003-01', 'Y00002-01', 'Y00004-01', 'Y00001-01']);
    assert.deepEqual(rowIds((await send('GET', '/?sort=device&dir=desc', { as: 'vic' })).body), ['Y00004-01', 'Y00003-01', 'Y00002-01', 'Y00001-01']);
    assert.deepEqual(rowIds((await send('GET', '/?sort=data', { as: 'vic' })).body).slice(0, 1), ['Y00002-01'], 'most data used first');
    assert.match(r.body, /<th[^>]*data-sort="seen"><a href="[^"]*sort=seen[^"]*">Last seen<\/a>/);
    assert.match(r.body, /<th aria-sort="ascending" data-sort="state">/);
    const off = row(r.body, 'Y00003-01');
    assert.doesNotMatch(off, /class="ok"/, 'nothing green on an offline device');
    assert.match(off, /<td data-label="Telephony" class="telephony"><span class="lk"[^>]*>cloud <span class="age">\(last known, 3 h ago\)/);
    assert.match(off, /<td data-label="Uplink" class="uplink"><span class="lk"[^>]*>wan/);
    assert.match(off, /<td data-label="Last seen" class="seen"><span[^>]*>60 min ago/, 'its last message (the birth before the death replayed)');
    assert.match(row(r.body, 'Y00001-01'), /<span class="ok">cloud<\/span>/, 'an online device is live');
    assert.match(String(r.headers['content-security-policy']), /script-src 'self'; connect-src 'self'/);
    assert.doesNotMatch(r.body, /<script>|\son[a-z]+="/i, 'no inline script or handler');
    for (const odd of ['/?q=a&q=b&sort=data&sort=x', '/alerts?kind=a&kind=b&status=open&status=all', '/?sort=%27%3B%20DROP%20TABLE%20devices'])
      assert.equal((await send('GET', odd, { as: 'vic' })).status, 200, odd);
    const js = await send('GET', '/static/fleet.js');
    assert.equal(js.status, 200);
    assert.match(String(js.headers['content-type']), /javascript/);
  });

  it('the live stream pushes a change without a reload, needs a session, and ends on sign-out or idle timeout (never keeps a session alive)', async () => {
    assert.equal((await send('GET', '/live/devices')).status, 303, 'no session: to sign in');
    const s = await stream('/live/devices', 'vic');
    assert.equal(s.res.statusCode, 200);
    assert.match(String(s.res.headers['content-type']), /^text\/event-stream/);
    assert.match(String(s.res.headers['content-security-policy']), /default-src 'none'/);
    await waitFor(async () => s.events.length >= 1, 5000, 'first update');
    const first = JSON.parse(s.events[0]!.data) as Record<string, string>;
    assert.deepEqual(Object.keys(first).sort(), ['cards', 'pager', 'rows']);
    assert.deepEqual(rowIds(first.rows!), ['Y00003-01', 'Y00002-01', 'Y00004-01', 'Y00001-01']);
    // Y00001-01 goes offline: the next update has it at the top, within a few ticks.
    await fleet.ctx.store.devices.ingest([birth('Y00001-01', false, Date.now())]);
    const upd = await waitFor(
      async () =>
        s.events
          .slice(1)
          .map((e) => JSON.parse(e.data) as Record<string, string>)
          .find((d) => /Y00001-01/.test(d.rows ?? '') && rowIds(d.rows!)[1] === 'Y00001-01'),
      5000,
      'update with Y00001-01 offline',
    );
    assert.match(row(upd.rows!, 'Y00001-01'), /offline/);
    assert.match(upd.cards!, /<b>2<\/b>Offline/);
    await new Promise((r) => setTimeout(r, 600));
    // Ticks are every 150 ms: an update goes out only when the fragments differ ("5 s ago" counts as a change).
    assert.ok(s.events.length < 12, `${s.events.length} updates in ~1 s: only changes are sent`);
    for (let i = 1; i < s.events.length; i++) assert.notEqual(s.events[i]!.data, s.events[i - 1]!.data, 'never the same fragments twice');
    // Sign-out ends the stream.
    await post('/logout', 'vic');
    await waitFor(async () => s.events.some((e) => e.event === 'signed-out'), 5000, 'signed-out event');
    await s.ended;
    await signIn('vic');

    // Idle: the open stream does not touch the session; past the idle timeout it ends.
    const t = await stream('/live/devices', 'vic');
    await waitFor(async () => t.events.length >= 1, 5000, 'first update');
    // Two steps of 20 min, each shorter than the 30 min idle timeout: a stream that touched the
    // session would keep it alive; this one does not, so 40 min after the last request it ends.
    skew += 20 * MIN;
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(!t.events.some((e) => e.event === 'signed-out'), 'still within the idle timeout');
    skew += 20 * MIN;
    try {
      await waitFor(async () => t.events.some((e) => e.event === 'signed-out'), 5000, 'signed-out after idle');
      assert.equal((await send('GET', '/', { as: 'vic' })).status, 303, 'and the session is gone');
    } finally {
      skew = 0;
    }
    await signIn('vic');
  });

  it('alerts name the practice; a device at 97 % has only its 95 % data-cap alert; filters by state, kind and practice', async () => {
    const open = await fleet.ctx.store.ops.openAlerts();
    assert.deepEqual(
      open.filter((a) => a.device_id === 'Y00002-01' && a.kind === 'data-cap').map((a) => a.level),
      ['95'],
    );
    const page = (await send('GET', '/alerts', { as: 'vic' })).body;
    assert.match(page, /<td data-label="Practice" class="practice">Canal Side \(Y00002\)<\/td>/);
    const kinds = (await send('GET', '/alerts?kind=records-stale', { as: 'vic' })).body;
    assert.deepEqual(
      [...kinds.matchAll(/<tr data-alert="\d+"[\s\S]*?<\/tr>/g)].map((m) => /records-stale/.test(m[0])),
      [true, true],
    );
    const y3 = (await send('GET', '/alerts?practice=y00003', { as: 'vic' })).body;
    assert.ok([...y3.matchAll(/class="practice">([^<]+)</g)].every((m) => m[1] === 'Hill Top (Y00003)'));
    assert.match(y3, /Hill Top/);
    // A practice manager sees their own practice whatever they ask for, and no action buttons.
    const pm = (await send('GET', '/alerts?practice=Y00002', { as: 'pam' })).body;
    assert.doesNotMatch(pm, /Canal Side/);
    assert.match(pm, /Hill Top/);
    assert.doesNotMatch(pm, /Acknowledge|id="bulk"/);
  });

  it('bulk acknowledge and snooze: admin only, CSRF-checked, each alert audited; a cleared alert has no Acknowledge and is refused', async () => {
    const ids = (await fleet.ctx.store.ops.openAlerts()).map((a) => a.id);
    assert.ok(ids.length >= 3);
    // Y00004-01 recovers: its records-stale alert clears.
    await fleet.ctx.store.devices.ingest([tele('Y00004-01', Date.now(), { recordsStale: false })]);
    await fleet.alerts.evaluate();
    const cleared = (await fleet.ctx.store.ops.listAlerts({ status: 'cleared', now: Date.now() })).find((a) => a.device_id === 'Y00004-01')!;
    const clearedRow = new RegExp(`<tr data-alert="${cleared.id}"[\\s\\S]*?</tr>`).exec((await send('GET', '/alerts?status=cleared', { as: 'amy' })).body)![0];
    assert.doesNotMatch(clearedRow, /Acknowledge|type="checkbox"|Snooze/);

    const form = (list: number[], action: string) => Object.fromEntries([...list.map((id) => [`a${id}`, '1']), ['action', action], ['hours', '8']]);
    assert.equal((await post('/alerts/bulk', 'vic', form(ids, 'ack'))).status, 403, 'viewer');
    assert.equal((await send('POST', '/alerts/bulk', { as: 'amy', form: form(ids, 'ack') })).status, 403, 'no CSRF token');
    assert.equal((await post('/alerts/bulk', 'pam', form(ids, 'ack'))).status, 403, 'practice manager');

    const [a, b] = ids.filter((id) => id !== cleared.id);
    const r = await post('/alerts/bulk', 'amy', { ...form([a!, b!, cleared.id], 'ack'), back: 'status=open&kind=&evil=1' });
    assert.equal(r.status, 303);
    assert.match(String(r.headers.location), /^\/alerts\?status=open&done=2\+of\+3\+alert/, 'back to the same filter, unknown keys dropped');
    const acks = await auditRows('ack-alert');
    assert.deepEqual(acks.map((x) => x.outcome).sort(), ['ok', 'ok', 'refused']);
    assert.match(acks.find((x) => x.outcome === 'refused')!.detail!, /already cleared/);
    assert.equal((await post(`/alerts/${cleared.id}/ack`, 'amy')).status, 303);
    assert.equal((await fleet.ctx.store.ops.alert(cleared.id))!.acked_at, null, 'a cleared alert stays unacknowledged');

    const c = (await fleet.ctx.store.ops.listAlerts({ status: 'open', now: Date.now() }))[0]!;
    await post(`/alerts/${c.id}/snooze`, 'amy', { hours: '4' });
    const sn = (await fleet.ctx.store.ops.alert(c.id))!;
    assert.equal(sn.snoozed_by, 'amy');
    assert.ok(Math.abs(sn.snoozed_until! - (Date.now() + 4 * 60 * MIN)) < 10_000);
    assert.deepEqual(
      (await auditRows('snooze-alert')).map((x) => [x.outcome, x.args]),
      [['ok', JSON.stringify({ id: c.id, hours: 4 })]],
    );
    const snoozedPage = (await send('GET', '/alerts?status=snoozed', { as: 'amy' })).body;
    assert.match(snoozedPage, new RegExp(`data-alert="${c.id}" data-state="snoozed"`));
    assert.match(snoozedPage, /snoozed until <time[^>]*>[^<]+(GMT|BST)<\/time> by amy/);
    assert.doesNotMatch((await send('GET', '/alerts?status=open', { as: 'amy' })).body, new RegExp(`data-alert="${c.id}"`));
    assert.equal((await post(`/alerts/${c.id}/snooze`, 'amy', { hours: '9999' })).headers.location, '/alerts?error=snooze+for+1+to+168+hours');

    // The snooze runs out with the alert still open: notified once more, and the page says so.
    await fleet.ctx.store.ops.snoozeAlert(c.id, 'amy', Date.now() - 1000);
    await fleet.alerts.evaluate();
    const row = new RegExp(`<tr data-alert="${c.id}" data-state="open"[\\s\\S]*?</tr>`).exec(
      (await send('GET', '/alerts?status=open', { as: 'amy' })).body,
    )?.[0];
    assert.ok(row, 'open again');
    assert.match(
      row,
      /snooze \(until <time[^>]*>[^<]+<\/time>, by amy\) ended with it still open: notified again <time[^>]*>[^<]+<\/time> \(none configured\)/,
    );
    assert.equal((await auditRows('alert-renotified')).length, 1);
  });

  it('maintenance windows: validated, audited, and no new alert opens for what they cover until they end', async () => {
    const bad = await post('/maintenance', 'amy', { scope: 'practice', id: 'Y99999', from: '', until: '2030-01-01T10:00', reason: 'x' });
    assert.equal(flash(bad, 'error'), 'no devices in practice Y99999');
    // Y00001-01 has been offline a few seconds; a window over it, then 16 minutes pass: no offline alert.
    const until = new Intl.DateTimeFormat('sv-SE', { timeZone: 'Europe/London', dateStyle: 'short', timeStyle: 'short' })
      .format(Date.now() + 30 * MIN)
      .replace(' ', 'T');
    const noReason = await post('/maintenance', 'amy', { scope: 'device', id: 'Y00001-01', until, reason: '' });
    assert.match(flash(noReason, 'error'), /^say why/);
    assert.equal((await post('/maintenance', 'vic', { scope: 'icb', until, reason: 'x' })).status, 403);
    const ok = await post('/maintenance', 'amy', { scope: 'device', id: 'Y00001-01', until, reason: 'new switch' });
    assert.equal(flash(ok, 'done'), 'maintenance window added for device Y00001-01');
    const [w] = await fleet.ctx.store.ops.currentMaintenance(Date.now());
    assert.ok(Math.abs(w!.ends_at - (Date.now() + 30 * MIN)) < 61_000, 'the UK wall time read back as the right instant');
    skew = 16 * MIN;
    try {
      await fleet.alerts.evaluate();
      assert.equal((await fleet.ctx.store.ops.openAlerts()).filter((a) => a.device_id === 'Y00001-01').length, 0);
      const list = (await send('GET', '/', { as: 'amy' })).body;
      assert.match(row(list, 'Y00001-01'), /<span class="badge">maintenance<\/span>/);
      assert.equal((await post(`/maintenance/${w!.id}/end`, 'amy')).status, 303);
      await fleet.alerts.evaluate();
      assert.deepEqual(
        (await fleet.ctx.store.ops.openAlerts()).filter((a) => a.device_id === 'Y00001-01').map((a) => a.kind),
        ['offline'],
        'window ended, still offline: alerts now',
      );
    } finally {
      skew = 0;
    }
    const audit = [...(await auditRows('maintenance-add')), ...(await auditRows('maintenance-end'))].map((a) => `${a.action} ${a.outcome}`).sort();
    assert.deepEqual(audit, ['maintenance-add ok', 'maintenance-add refused', 'maintenance-add refused', 'maintenance-end ok']);
  });

  it('disruptive commands ask first (nothing is sent or audited until confirmed); ping does not', async () => {
    const before = (await fleet.ctx.store.accounts.auditLog(500)).length;
    const r = await post('/devices/Y00002-01/commands/force-uplink', 'amy', { uplink: '4g', minutes: '30' });
    assert.equal(r.status, 200);
    assert.match(r.body, /Force <b>Y00002-01<\/b> at Canal Side \(Y00002\) onto uplink "4g" for 30 minutes\?/);
    assert.match(
      r.body,
      /<input type="hidden" name="uplink" value="4g"><input type="hidden" name="minutes" value="30">\s*<input type="hidden" name="confirm" value="yes">/,
    );
    for (const [path, what] of [
      ['/devices/Y00002-01/commands/drill', /failover drill/],
      ['/devices/Y00002-01/reload', /Re-send the stored desired config/],
      ['/practices/Y00002/reload', /every box of practice Y00002 \(1 device/],
    ] as const)
      assert.match((await post(path, 'amy')).body, what);
    assert.equal((await fleet.ctx.store.accounts.auditLog(500)).length, before, 'nothing sent, nothing audited');
    const done = await post('/devices/Y00002-01/commands/force-uplink', 'amy', { uplink: '4g', minutes: '30', confirm: 'yes' });
    assert.equal(done.status, 303);
    const sent = (await fleet.ctx.store.accounts.auditLog(5)).find((a) => a.action === 'force-uplink');
    assert.ok(sent, 'confirmed: the command was sent (and audited)');
    assert.deepEqual(JSON.parse(sent.args!), { uplink: '4g', minutes: 30 });
    assert.equal((await post('/devices/Y00002-01/commands/ping', 'amy')).status, 303, 'ping goes straight through');
    assert.equal((await post('/devices/Y00002-01/commands/drill', 'vic', { confirm: 'yes' })).status, 403, 'viewer');
  });

  it('an open live stream does not hold up the fleet stopping', async () => {
    const s = await stream('/live/devices', 'amy');
    await waitFor(async () => s.events.length >= 1, 5000, 'first update');
    const t0 = Date.now();
    stopped = true;
    await fleet.stop();
    await s.ended;
    assert.ok(Date.now() - t0 < 5000, `stopped in ${Date.now() - t0} ms`);
  });
});
