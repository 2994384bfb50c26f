/**
 * Bad input against REAL kamailio (driven by the capability): malformed SIP from SIPp and as raw
 * datagrams, a REGISTER flood, wrong credentials. After each, the registrar still answers, no
 * restart happened, and a normal registration and call still work.
 */
import assert from 'node:assert/strict';
import { reported } from '../../helpers/reports.js';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MAX_MESSAGE_BYTES } from '../../../agent/src/telephony/kamailio-cfg.js';
import { freePort } from '../../helpers/mosquitto.js';
import {
  call,
  codes,
  digestRegister,
  register,
  sipp,
  SIPP_DIR,
  sipRequest,
  sipSkip,
  LAB_SIP,
  StandIns,
  startLabTelephony,
  type startTelephony,
  udpExchange,
  waitMode,
} from '../../helpers/sipp.js';

const skip = sipSkip();
const K = LAB_SIP.listen;
const H = { a: '127.0.1.11', b: '127.0.1.12', fuzz: '127.0.1.20', flood: '127.0.1.21', guess: '127.0.1.22' };
const EXT = ['1001', '1002', '1003'];

describe('kamailio under bad input', { skip }, () => {
  let t: Awaited<ReturnType<typeof startTelephony>>;
  const standIns = new StandIns();
  let port = 0;
  let bPort = 0;
  let pid = 0;

  before(async () => {
    [port, bPort] = [await freePort(), await freePort()];
    const emPort = await freePort();
    standIns.start('handset.xml', H.b, bPort, 'b');
    standIns.start('handset.xml', '127.0.0.4', emPort, 'emergency');
    await standIns.alive();
    t = await startLabTelephony(port, EXT, {
      emergency: { trunk: { host: '127.0.0.4', port: emPort } },
      auth: { maxFailures: 3, banS: 3 },
      pike: { reqsDensity: 30, samplingS: 2 },
    });
    await waitMode(t.cap, 'survivable', 8000);
    pid = Number((await import('node:fs')).readFileSync(join(t.cap.dir, 'kamailio.pid'), 'utf8'));
  });
  after(async () => {
    await t?.stop();
    await standIns.killAll();
  });

  const target = () => `${K}:${port}`;
  /** The registrar answers, kamailio was never restarted, and a handset can register and call. */
  const stillWorks = async (from = H.a) => {
    assert.deepEqual(
      codes(await udpExchange(from, K, port, [sipRequest('OPTIONS', { src: from, dst: K, port, ruriUser: false })])),
      [200],
      'registrar answers OPTIONS',
    );
    assert.equal(reported(t.cap).details?.restarts, 0, 'kamailio was not restarted');
    assert.equal(Number((await import('node:fs')).readFileSync(join(t.cap.dir, 'kamailio.pid'), 'utf8')), pid, 'same kamailio process');
    assert.equal(
      await register({ target: target(), ip: H.b, ext: '1002', password: 'secret-1002', cport: bPort, expect: 'appliance' }),
      0,
      '1002 registers locally',
    );
    assert.equal(await call({ target: target(), ip: from, from: '1001', to: '1002', password: 'secret-1001', expect: 'b' }), 0, '1001 calls 1002');
  };

  it('a SIPp fuzz run (Content-Length lie, bad From, bad Request-URI, Max-Forwards 0) gets 400/483 for each, then 200', async () => {
    assert.equal(await sipp([target(), '-sf', join(SIPP_DIR, 'malformed.xml'), '-i', H.fuzz, '-m', '1'], 8), 0);
    await stillWorks();
  });

  it('raw malformed datagrams: clear 4xx/5xx where a reply is possible, silent drop where not; never a crash', async () => {
    const base = { src: H.fuzz, dst: K, port, ruriUser: false };
    const ok = sipRequest('OPTIONS', base);
    // [name, datagram, expected first status or 0 = dropped (nothing to reply to: no Via/Call-ID/CSeq)]
    const cases: [string, string | Buffer, number][] = [
      ['binary garbage', Buffer.from([0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 0xff]), 0],
      ['empty datagram', Buffer.alloc(0), 0],
      ['only CRLFs (keepalive)', '\r\n\r\n', 0],
      ['no Call-ID', ok.replace(/Call-ID:[^\r]*\r\n/, ''), 0],
      ['no CSeq', ok.replace(/CSeq:[^\r]*\r\n/, ''), 0],
      ['no Via', ok.replace(/Via:[^\r]*\r\n/, ''), 0],
      ['broken Via', ok.replace(/Via:[^\r]*/, 'Via: garbage;;;'), 0],
      ['header without a colon', ok.replace('Max-Forwards: 70', 'Max-Forwards 70'), 0],
      ['CSeq method mismatch', ok.replace('CSeq: 1 OPTIONS', 'CSeq: 1 BYE'), 400],
      ['CSeq not a number', ok.replace('CSeq: 1 OPTIONS', 'CSeq: x OPTIONS'), 400],
      ['bad Request-URI', ok.replace(/^OPTIONS [^ ]+/, 'OPTIONS :::@@@'), 400],
      ['Content-Length lie', sipRequest('INVITE', { ...base, ruriUser: true, body: 'v=0\r\n' }).replace(/Content-Length: \d+/, 'Content-Length: 9999'), 400],
      ['bad From', ok.replace(/From:[^\r]*/, 'From: <<<>>>'), 400],
      ['Max-Forwards 0', ok.replace('Max-Forwards: 70', 'Max-Forwards: 0'), 483],
      ['oversized (60 KB header)', sipRequest('INVITE', { ...base, ruriUser: true, extra: ['X-Pad: ' + 'A'.repeat(60_000)] }), 513],
      ['just over the size limit', sipRequest('REGISTER', { ...base, extra: ['X-Pad: ' + 'A'.repeat(MAX_MESSAGE_BYTES)] }), 513],
      [
        'stray response',
        'SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\n' +
          'Call-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n',
        0,
      ],
      [
        'SDP garbage in an INVITE (no credentials)',
        sipRequest('INVITE', { ...base, ruriUser: true, extra: ['Content-Type: application/sdp'], body: '\u0000\u0001\u00ff garbage' }),
        407,
      ],
    ];
    // One socket per case (replies cannot be confused), all at once (well under pike's density).
    const got = await Promise.all(cases.map(([, d]) => udpExchange(H.fuzz, K, port, [d], 600).then(codes)));
    cases.forEach(([name, , want], i) => assert.deepEqual(got[i], want ? [want] : [], `${name}: got ${JSON.stringify(got[i])}`));
    await stillWorks();
  });

  it('a REGISTER flood from one LAN source is cut off by pike; another handset still registers and calls', async () => {
    const n = 1500;
    const flood = Array.from({ length: n }, () => sipRequest('REGISTER', { src: H.flood, dst: K, port, user: '1003' }));
    const answered = codes(await udpExchange(H.flood, K, port, flood, 500));
    assert.ok(answered.length < n / 10, `the flooder got ${answered.length} replies to ${n} REGISTERs`);
    assert.ok(answered.length >= 1 && answered.every((c) => c === 401), 'before the block it got ordinary challenges');
    // Still blocked right after: its next request gets nothing, while another handset is served.
    assert.deepEqual(
      codes(await udpExchange(H.flood, K, port, [sipRequest('OPTIONS', { src: H.flood, dst: K, port, ruriUser: false })])),
      [],
      'the flooder stays blocked',
    );
    await stillWorks();
  });

  it('wrong credentials: 401 challenge, 403 per wrong answer, source then banned (right password too), others unaffected, 999 works, ban expires', async () => {
    const reg = (password: string, src = H.guess) => digestRegister({ src, dst: K, port, ext: '1003', password });
    for (let i = 0; i < 3; i++) {
      const r = await reg('wrong-password');
      assert.equal(r.first, 401, 'challenged first');
      assert.equal(r.code, 403, `attempt ${i + 1}: ${r.reason}`);
      assert.match(r.reason, /wrong credentials/);
    }
    const banned = await reg('secret-1003');
    assert.equal(banned.code === 403 || banned.first === 403, true, 'the right password is refused while banned');
    assert.match(banned.reason, /too many failed attempts/);
    assert.equal((await reg('secret-1003', H.a)).code, 200, 'another handset registers 1003 with the right password');
    assert.equal(await call({ target: target(), ip: H.guess, from: '5555', to: '999', expect: 'emergency' }), 0, '999 from the banned source is still routed');
    await new Promise((r) => setTimeout(r, 3500));
    assert.equal((await reg('secret-1003')).code, 200, 'after banS the source may register again');
    await stillWorks();
  });
});
