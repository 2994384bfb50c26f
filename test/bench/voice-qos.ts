/**
 * Voice first on 4G (part of `make bench-telephony`): an RTP-like stream (G.711 shape: 50 packets/s,
 * 172-byte datagrams, RTP port range) from the far end to a LAN handset, while a bulk TCP download
 * saturates a rate-limited 4G link, with and without the agent's voice shaper (voice-qos.ts:
 * DSCP EF + htb, download shaped on lan0 egress). Namespaces tpv-far (the carrier + the internet:
 * tbf at `RATE_KBIT` with a bloated 400 ms buffer on its side of the 4G link), tpv-app (the
 * appliance: router, shaper), tpv-lan (the handset and the downloading PC). Loss can be added on the
 * carrier with nft numgen (LOSS_PCT). Prints one JSON line per case:
 *   {"case":"voice-4g","load":"idle"|"bulk"|"bulk+shaper","jitterMs","lossPct","owdMs","R","mos",...}
 * jitter = RFC 3550 interarrival jitter (J += (|D| - J) / 16); R = ITU-T G.107 E-model, simplified
 * for G.711 (Ie 0, Bpl 4.3): R = 93.2 - Id(d) - 95 Ppl / (Ppl + 4.3), d = mean one-way delay + 2 x
 * jitter (jitter buffer) + 20 ms packetisation; MOS from R (G.107 Annex B).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ProcessRunner, type CommandRunner } from '../../agent/src/platform/command.js';
import { NftAdapter } from '../../agent/src/platform/nft.js';
import { VoiceQos } from '../../agent/src/telephony/voice-qos.js';

const RATE_KBIT = Number(process.env.RATE_KBIT ?? 4000);
const LOSS_PCT = Number(process.env.LOSS_PCT ?? 0);
const SECONDS = Number(process.env.VOICE_SECONDS ?? 10);
const NS = { far: 'tpv-far', app: 'tpv-app', lan: 'tpv-lan' };
const sh = (args: string[], input?: string) => execFileSync(args[0]!, args.slice(1), { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'ignore'] });
const inNs = (ns: string, args: string[], input?: string) => sh(['ip', 'netns', 'exec', ns, ...args], input);
const out = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const kids: ChildProcess[] = [];
const node = (ns: string, js: string) => {
  const c = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', js], { stdio: ['ignore', 'pipe', 'inherit'] });
  kids.push(c);
  return c;
};

function up(): void {
  down();
  for (const n of Object.values(NS)) sh(['ip', 'netns', 'add', n]);
  sh(['ip', 'link', 'add', 'wwan0', 'netns', NS.app, 'type', 'veth', 'peer', 'name', 'down0', 'netns', NS.far]);
  sh(['ip', 'link', 'add', 'lan0', 'netns', NS.app, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS.lan]);
  const cfg: [string, string, string][] = [
    [NS.app, 'wwan0', '10.90.0.2/24'],
    [NS.far, 'down0', '10.90.0.1/24'],
    [NS.app, 'lan0', '192.168.60.1/24'],
    [NS.lan, 'eth0', '192.168.60.10/24'],
  ];
  for (const [n, d, a] of cfg) {
    sh(['ip', '-n', n, 'addr', 'add', a, 'dev', d]);
    sh(['ip', '-n', n, 'link', 'set', d, 'up']);
    sh(['ip', '-n', n, 'link', 'set', 'lo', 'up']);
  }
  sh(['ip', '-n', NS.far, 'route', 'add', '192.168.60.0/24', 'via', '10.90.0.2']);
  sh(['ip', '-n', NS.lan, 'route', 'add', 'default', 'via', '192.168.60.1']);
  inNs(NS.app, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  // The 4G carrier's downlink: rate-limited with a deep (bloated) buffer, as cellular networks are.
  inNs(NS.far, ['tc', 'qdisc', 'add', 'dev', 'down0', 'root', 'tbf', 'rate', `${RATE_KBIT}kbit`, 'burst', '16kb', 'latency', '400ms']);
  if (LOSS_PCT > 0)
    inNs(
      NS.far,
      ['nft', '-f', '-'],
      `table inet labloss {\n\tchain o {\n\t\ttype filter hook output priority 0; policy accept;\n\t\toifname "down0" numgen random mod 100 ` +
        `< ${LOSS_PCT} drop\n\t}\n}\n`,
    );
}

function down(): void {
  for (const n of Object.values(NS)) {
    try {
      sh(['ip', 'netns', 'del', n]);
    } catch {
      /* not there */
    }
  }
}

/** Bulk TCP download: a server on the far side streaming zeros, a client on the LAN reading them. */
function startBulk(): () => Promise<number> {
  const server = node(
    NS.far,
    `require('net').createServer(s=>{const b=Buffer.alloc(65536);const ` +
      `w=()=>{while(s.write(b));};s.on('drain',w);s.on('error',()=>{});w();}).listen(9000,'10.90.0.1',()=>console.log('ready'));`,
  );
  let bytes = 0;
  let client: ChildProcess | null = null;
  createInterface({ input: server.stdout! }).once('line', () => {
    client = node(
      NS.lan,
      `let n=0;const s=require('net').connect(9000,'10.90.0.1');s.on('data',d=>n+=d.length);s.on('error',()=>{});\n` +
        `process.on('SIGTERM',()=>{console.log(n);process.exit(0);});`,
    );
    createInterface({ input: client.stdout! }).on('line', (l) => (bytes = Number(l)));
  });
  return async () => {
    const c = client as ChildProcess | null;
    if (c) {
      const done = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await done;
    }
    server.kill('SIGKILL');
    return bytes;
  };
}

interface VoiceResult {
  sent: number;
  received: number;
  jitterMs: number;
  owdMs: number;
  p99OwdMs: number;
}

/** 50 packets/s for SECONDS from far:12000 to lan:14000; the receiver computes jitter and delay. */
async function voiceStream(): Promise<VoiceResult> {
  const n = SECONDS * 50;
  const rx = node(
    NS.lan,
    `const s=require('dgram').createSocket('udp4');let got=0,J=0,prev=null;const owd=[];
s.on('message',m=>{const now=performance.timeOrigin+performance.now();const sent=m.readDoubleBE(4);const transit=now-sent;owd.push(transit);got++;
if(prev!==null){const D=transit-prev;J+=(Math.abs(D)-J)/16;}prev=transit;});
s.bind(14000,'192.168.60.10',()=>console.log('ready'));
process.on('SIGTERM',()=>{owd.sort((a,b)=>a-b);
const mean=owd.reduce((a,b)=>a+b,0)/Math.max(1,owd.length);
console.log(JSON.stringify({got,J,owd:mean,p99:owd[Math.floor(owd.length*0.99)]??0}));process.exit(0);});`,
  );
  await new Promise<void>((r) => createInterface({ input: rx.stdout! }).once('line', () => r()));
  let result = '';
  createInterface({ input: rx.stdout! }).on('line', (l) => (result = l));
  const tx = node(
    NS.far,
    `const s=require('dgram').createSocket('udp4');s.bind(12000,'10.90.0.1',()=>{let i=0;const t0=performance.now();
const tick=()=>{const b=Buffer.alloc(172);b.writeUInt32BE(i,0);b.writeDoubleBE(performance.timeOrigin+performance.now(),4);s.send(b,14000,'192.168.60.10');i++;
if(i<${n})setTimeout(tick,Math.max(0,t0+i*20-performance.now()));else setTimeout(()=>process.exit(0),100);};tick();});`,
  );
  await new Promise((r) => tx.once('exit', r));
  await sleep(1000);
  const done = new Promise((r) => rx.once('exit', r));
  rx.kill('SIGTERM');
  await done;
  const r = JSON.parse(result) as { got: number; J: number; owd: number; p99: number };
  return { sent: n, received: r.got, jitterMs: r.J, owdMs: r.owd, p99OwdMs: r.p99 };
}

/** ITU-T G.107 E-model, simplified for G.711 with random loss and no PLC. */
export function eModel(owdMs: number, jitterMs: number, lossPct: number): { R: number; mos: number } {
  const d = owdMs + 2 * jitterMs + 20;
  const id = 0.024 * d + (d > 177.3 ? 0.11 * (d - 177.3) : 0);
  const ie = (95 * lossPct) / (lossPct + 4.3);
  const R = Math.max(0, Math.min(100, 93.2 - id - ie));
  const mos = R <= 0 ? 1 : R >= 100 ? 4.5 : 1 + 0.035 * R + 7e-6 * R * (R - 60) * (100 - R);
  return { R: Math.round(R * 10) / 10, mos: Math.round(mos * 100) / 100 };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    out({ case: 'voice-4g', skipped: 'needs root (namespaces, tc, nft)' });
    return;
  }
  up();
  const real = new ProcessRunner();
  const appRunner: CommandRunner = { run: (cmd, args, o) => real.run('ip', ['netns', 'exec', NS.app, cmd, ...args], o) };
  const qos = new VoiceQos(appRunner, new NftAdapter(appRunner));
  try {
    for (const load of ['idle', 'bulk', 'bulk+shaper'] as const) {
      if (load === 'bulk+shaper') {
        // 90 % of the carrier's rate: the queue forms in the appliance, where voice can jump it.
        await qos.apply({
          wanInterface: 'wwan0',
          lanInterface: 'lan0',
          uplinkKbit: Math.round(RATE_KBIT * 0.9),
          downlinkKbit: Math.round(RATE_KBIT * 0.9),
          voiceKbit: 512,
          sipPort: 5060,
          rtpPorts: { from: 10000, to: 32767 },
        });
      }
      const stopBulk = load === 'idle' ? null : startBulk();
      if (stopBulk) await sleep(3000); // let TCP fill the bottleneck queue
      const t0 = Date.now();
      const v = await voiceStream();
      const bulkBytes = stopBulk ? await stopBulk() : 0;
      const lossPct = Math.round(((v.sent - v.received) / v.sent) * 1000) / 10;
      out({
        case: 'voice-4g',
        load,
        rateKbit: RATE_KBIT,
        carrierLossPct: LOSS_PCT,
        jitterMs: Math.round(v.jitterMs * 10) / 10,
        lossPct,
        owdMs: Math.round(v.owdMs),
        p99OwdMs: Math.round(v.p99OwdMs),
        ...eModel(v.owdMs, v.jitterMs, lossPct),
        bulkKbit: stopBulk ? Math.round((bulkBytes * 8) / (Date.now() - t0 + 3000)) : 0,
      });
    }
  } finally {
    await qos.remove().catch(() => {});
    for (const k of kids) k.kill('SIGKILL');
    down();
  }
}

await main();
