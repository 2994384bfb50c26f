/**
 * SIPp stand-ins and a real kamailio driven by the telephony capability, for the telephony
 * integration tests and bench-telephony. Every stand-in that answers stamps `X-Answered-By: NAME`
 * (-key who NAME) and every caller checks it (-set expect NAME), so a passing call proves which
 * party it reached: a stand-in that SIPp refused to load can never pass silently again.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { systemClock } from '../../common/clock.js';
import { ProcessRunner } from '../../agent/src/platform/command.js';
import { TelephonyCapability } from '../../agent/src/telephony/telephony.js';
import { REPO } from '../lab/lab.js';
import { createTestCtx, type TestCtx } from './ctx.js';

export const SIPP_DIR = join(REPO, 'test/fixtures/sipp');
const runs = (b: string) => {
  const r = spawnSync(b, ['-v']);
  return !r.error && r.status !== null;
};
/** false, or why the SIP tests cannot run here. */
export const sipSkip = (): string | false => (!runs('kamailio') ? 'kamailio not installed' : !runs('sipp') ? 'sipp not installed (sip-tester)' : false);

/** One SIPp client run; resolves with its exit code (0 = every call succeeded). */
export function sipp(args: string[], timeoutS = 10, spawnPrefix: string[] = []): Promise<number> {
  return new Promise((res) => {
    const all = [...spawnPrefix, 'sipp', ...args, '-nostdin', '-timeout', String(timeoutS), '-timeout_error'];
    const c = spawn(all[0]!, all.slice(1), { stdio: 'ignore' });
    c.on('exit', (code) => res(code ?? -1));
  });
}

export interface CallOpts {
  /** kamailio's address:port */
  target: string;
  /** the handset's own address (SIPp -i) */
  ip: string;
  from: string;
  to: string;
  password?: string;
  /** X-Answered-By the 200 must carry */
  expect: string;
  holdMs?: number;
  timeoutS?: number;
  /** local SIP port of the calling handset (default: any) */
  port?: number;
  prefix?: string[];
}

export const call = (o: CallOpts) =>
  sipp(
    [
      o.target,
      '-sf',
      join(SIPP_DIR, 'call.xml'),
      '-s',
      o.to,
      '-i',
      o.ip,
      ...(o.port ? ['-p', String(o.port)] : []),
      '-key',
      'user',
      o.from,
      ...(o.password ? ['-au', o.from, '-ap', o.password] : []),
      '-set',
      'expect',
      o.expect,
      '-m',
      '1',
      '-d',
      String(o.holdMs ?? 100),
    ],
    o.timeoutS ?? 8,
    o.prefix,
  );

/** REGISTER ext (contact ip:cport, where its handset.xml stand-in listens); expect = who holds the binding. */
export const register = (o: {
  target: string;
  ip: string;
  ext: string;
  password: string;
  cport: number;
  expect: string;
  expires?: number;
  timeoutS?: number;
  prefix?: string[];
}) =>
  sipp(
    [
      o.target,
      '-sf',
      join(SIPP_DIR, 'register.xml'),
      '-i',
      o.ip,
      '-key',
      'user',
      o.ext,
      '-key',
      'cport',
      String(o.cport),
      '-key',
      'expires',
      String(o.expires ?? 300),
      '-au',
      o.ext,
      '-ap',
      o.password,
      '-set',
      'expect',
      o.expect,
      '-m',
      '1',
    ],
    o.timeoutS ?? 5,
    o.prefix,
  );

/** Background answering party (handset.xml, pbx.xml, noanswer.xml, reject.xml). */
export class StandIns {
  private readonly procs: ChildProcess[] = [];
  private readonly errors = new Map<ChildProcess, string>();
  start(scenario: string, ip: string, port: number, who: string, extra: string[] = [], prefix: string[] = []): ChildProcess {
    const all = [...prefix, 'sipp', '-sf', join(SIPP_DIR, scenario), '-i', ip, '-p', String(port), '-key', 'who', who, '-aa', '-nostdin', ...extra];
    const c = spawn(all[0]!, all.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    this.errors.set(c, '');
    c.stderr?.on('data', (d: Buffer) => this.errors.set(c, (this.errors.get(c)! + d.toString()).slice(-2000)));
    this.procs.push(c);
    return c;
  }
  /**
   * Every stand-in started so far is still running: SIPp refuses a bad scenario at load time and
   * exits, and a dead stand-in must fail the test set-up, not make a later "fallback" pass.
   */
  async alive(settleMs = 400): Promise<void> {
    await new Promise((r) => setTimeout(r, settleMs));
    for (const c of this.procs) {
      if (c.exitCode !== null || c.signalCode !== null)
        throw new Error(`SIPp stand-in ${c.spawnargs.slice(1, 3).join(' ')} exited: ${this.errors.get(c)?.trim()}`);
    }
  }
  kill(c: ChildProcess): Promise<void> {
    // Killed on purpose: no longer expected to be alive.
    const i = this.procs.indexOf(c);
    if (i >= 0) this.procs.splice(i, 1);
    return new Promise((res) => {
      if (c.exitCode !== null || c.signalCode !== null) return res();
      c.once('exit', () => res());
      c.kill('SIGKILL');
    });
  }
  async killAll(): Promise<void> {
    await Promise.all([...this.procs].map((c) => this.kill(c)));
  }
}

/** Wait until the capability reports `mode`; returns how long it took. */
export async function waitMode(cap: TelephonyCapability, mode: string, ms: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (cap.health().details?.mode === mode) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`telephony mode ${mode} not reached in ${ms} ms: ${JSON.stringify(cap.health())}`);
}

/** The capability with real kamailio (ProcessRunner, system clock) and the given telephony section. */
export async function startTelephony(telephony: Record<string, unknown>): Promise<{ ctx: TestCtx; cap: TelephonyCapability; stop(): Promise<void> }> {
  const ctx = createTestCtx({
    clock: systemClock,
    commands: new ProcessRunner(),
    config: { telephony: { enabled: true, pollMs: 250, firewall: { enabled: false }, ...telephony } },
  });
  const cap = new TelephonyCapability();
  await cap.start(ctx);
  return {
    ctx,
    cap,
    stop: async () => {
      await cap.stop();
      ctx.cleanup();
    },
  };
}

/** Where kamailio listens in the loopback lab, and the subnet its LAN handsets call from. */
export const LAB_SIP = { listen: '127.0.0.1', lanSubnet: '127.0.1.0/24' };
/** Probe timings short enough for a mode switch within a test's patience. */
export const FAST_PROBE = { intervalS: 1, failAfter: 2, recoverAfter: 2, timeoutMs: 500 };

/**
 * startTelephony on LAB_SIP.listen:port for LAN handsets, with these extensions (password
 * `secret-EXT`, what every test's handsets authenticate with); `telephony` is overlaid.
 */
export const startLabTelephony = (port: number, exts: string[], telephony: Record<string, unknown> = {}) =>
  startTelephony({
    listen: LAB_SIP.listen,
    port,
    lanSubnets: [LAB_SIP.lanSubnet],
    extensions: exts.map((ext) => ({ ext, password: `secret-${ext}` })),
    ...telephony,
  });

/**
 * Raw UDP: send each datagram from one socket bound to `src`, collect every reply for `waitMs`
 * after the last send. Used for the malformed-SIP and flood tests (SIPp cannot send garbage).
 */
export function udpExchange(src: string, dst: string, port: number, datagrams: (string | Buffer)[], waitMs = 400, gapMs = 0): Promise<string[]> {
  return new Promise((res, rej) => {
    const s = createSocket('udp4');
    const got: string[] = [];
    s.on('message', (m) => got.push(m.toString('latin1')));
    s.on('error', rej);
    s.bind(0, src, async () => {
      for (const d of datagrams) {
        await new Promise<void>((ok) => s.send(d, port, dst, () => ok()));
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
      setTimeout(() => {
        s.close();
        res(got);
      }, waitMs);
    });
  });
}

/** A syntactically valid request from `src` (for probing that the registrar still answers). */
export function sipRequest(
  method: string,
  o: { src: string; srcPort?: number; dst: string; port: number; user?: string; callId?: string; extra?: string[]; body?: string; ruriUser?: boolean },
): string {
  const user = o.user ?? '1001';
  const body = o.body ?? '';
  return [
    `${method} sip:${method === 'REGISTER' || o.ruriUser === false ? '' : user + '@'}${o.dst}:${o.port} SIP/2.0`,
    `Via: SIP/2.0/UDP ${o.src}:${o.srcPort ?? 5999};rport;branch=z9hG4bK${Math.random().toString(36).slice(2)}`,
    `From: <sip:${user}@${o.dst}>;tag=${Math.random().toString(36).slice(2)}`,
    `To: <sip:${user}@${o.dst}>`,
    `Call-ID: ${o.callId ?? Math.random().toString(36).slice(2)}@${o.src}`,
    `CSeq: 1 ${method}`,
    `Contact: <sip:${user}@${o.src}:${o.srcPort ?? 5999}>`,
    'Max-Forwards: 70',
    ...(o.extra ?? []),
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n');
}

/** First line of each reply ("SIP/2.0 400 Bad Request" -> 400). */
export const codes = (replies: string[]) => replies.map((r) => Number(/^SIP\/2\.0 (\d{3})/.exec(r)?.[1] ?? 0));

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

/**
 * REGISTER with digest auth over raw UDP (RFC 2617, qop=auth when offered): returns the status of
 * the final reply and its reason phrase, or 0 when nothing came back (dropped / banned silently).
 */
export async function digestRegister(o: {
  src: string;
  dst: string;
  port: number;
  ext: string;
  password: string;
  realm?: string;
}): Promise<{ code: number; reason: string; first: number }> {
  const callId = `${Math.random().toString(36).slice(2)}@${o.src}`;
  const first = await udpExchange(o.src, o.dst, o.port, [sipRequest('REGISTER', { ...o, user: o.ext, callId })], 300);
  const c1 = codes(first)[0] ?? 0;
  if (c1 !== 401) return { code: c1, reason: first[0]?.split('\r\n')[0] ?? '', first: c1 };
  const h = /WWW-Authenticate:\s*Digest\s+([^\r]*)/i.exec(first[0]!)?.[1] ?? '';
  const param = (k: string) => new RegExp(`${k}="?([^",]+)"?`).exec(h)?.[1];
  const realm = param('realm') ?? o.realm ?? '';
  const nonce = param('nonce') ?? '';
  const uri = `sip:${o.dst}:${o.port}`;
  const ha1 = md5(`${o.ext}:${realm}:${o.password}`);
  const ha2 = md5(`REGISTER:${uri}`);
  const qop = /qop="?auth/.test(h);
  const cnonce = Math.random().toString(36).slice(2);
  const response = qop ? md5(`${ha1}:${nonce}:00000001:${cnonce}:auth:${ha2}`) : md5(`${ha1}:${nonce}:${ha2}`);
  const auth =
    `Authorization: Digest username="${o.ext}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", ` +
    `algorithm=MD5${qop ? `, qop=auth, nc=00000001, cnonce="${cnonce}"` : ''}`;
  const second = await udpExchange(
    o.src,
    o.dst,
    o.port,
    [sipRequest('REGISTER', { ...o, user: o.ext, callId, extra: [auth] }).replace('CSeq: 1 ', 'CSeq: 2 ')],
    300,
  );
  return { code: codes(second)[0] ?? 0, reason: second[0]?.split('\r\n')[0] ?? '', first: c1 };
}
