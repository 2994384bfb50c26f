import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { PolicyApplier, renderPolicy, type PolicySpec } from '../../../agent/src/cellular/policy.js';
import { ProcessRunner, type CommandRunner } from '../../../agent/src/platform/command.js';
import { requireRoot } from '../../helpers/ctx.js';

/**
 * The 4G policy against the real kernel: client (lb-c) -> appliance (lb-r, with "lbwwan0" standing
 * in for the modem's interface) -> carrier side (lb-s) holding a critical and a non-critical server.
 */
const NS = ['lb-c', 'lb-r', 'lb-s'];
const CRIT = '10.91.2.2';
const OTHER = '10.91.2.3';
const PORT = 8443;

const skip = requireRoot() || (hasNft() ? false : 'nft not installed');
function hasNft(): boolean {
  try {
    execFileSync('nft', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const sh = (args: string[]) => execFileSync(args[0]!, args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const inNs = (ns: string, ...args: string[]) => sh(['ip', 'netns', 'exec', ns, ...args]);

function cleanup(): void {
  for (const ns of NS) {
    try {
      sh(['ip', 'netns', 'del', ns]);
    } catch {
      /* not there */
    }
  }
}

/** Runs every command inside the appliance namespace, as the agent would run on the host. */
class NetnsRunner implements CommandRunner {
  private readonly inner = new ProcessRunner();
  constructor(private readonly ns: string) {}
  run(cmd: string, args: readonly string[], opts?: Parameters<CommandRunner['run']>[2]) {
    return this.inner.run('ip', ['netns', 'exec', this.ns, cmd, ...args], opts);
  }
}

/** TCP connect + read from the client namespace; resolves with bytes read, or -1 on failure. */
function fetchFrom(host: string, timeoutMs = 1500): Promise<{ bytes: number; ms: number }> {
  const script = `const s=require('net').connect(${PORT},'${host}');let n=0;const t0=Date.now();
    const to=setTimeout(()=>{console.log(JSON.stringify({bytes:-1,ms:Date.now()-t0}));process.exit(0)},${timeoutMs});
    s.on('data',d=>n+=d.length);s.on('end',()=>{clearTimeout(to);console.log(JSON.stringify({bytes:n,ms:Date.now()-t0}));process.exit(0)});
    s.on('error',()=>{clearTimeout(to);console.log(JSON.stringify({bytes:-1,ms:Date.now()-t0}));process.exit(0)});`;
  return new Promise((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', 'lb-c', process.execPath, '-e', script]);
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('close', () => {
      try {
        resolve(JSON.parse(out));
      } catch (e) {
        reject(e);
      }
    });
  });
}

const spec = (nonCritical: PolicySpec['nonCritical'], rateLimitKbytes = 32): PolicySpec => ({
  iface: 'lbwwan0',
  nonCritical,
  rateLimitKbytes,
  allowDns: true,
  critical: [{ name: 'clinical', addrs: [CRIT], protocol: 'tcp', ports: [String(PORT)] }],
  voice: { udpPorts: ['5060', '10000-20000'], tcpPorts: ['5061'] },
});

describe('4G policy on real nftables', { skip }, () => {
  let server: ChildProcess | undefined;
  const applier = new PolicyApplier(new NetnsRunner('lb-r'));
  const SIZE = 256 * 1024;

  before(async () => {
    cleanup();
    for (const ns of NS) sh(['ip', 'netns', 'add', ns]);
    sh(['ip', 'link', 'add', 'lbc0', 'netns', 'lb-c', 'type', 'veth', 'peer', 'name', 'lbr0', 'netns', 'lb-r']);
    sh(['ip', 'link', 'add', 'lbs0', 'netns', 'lb-s', 'type', 'veth', 'peer', 'name', 'lbwwan0', 'netns', 'lb-r']);
    inNs('lb-c', 'ip', 'addr', 'add', '10.91.1.2/24', 'dev', 'lbc0');
    inNs('lb-r', 'ip', 'addr', 'add', '10.91.1.1/24', 'dev', 'lbr0');
    inNs('lb-r', 'ip', 'addr', 'add', '10.91.2.1/24', 'dev', 'lbwwan0');
    inNs('lb-s', 'ip', 'addr', 'add', `${CRIT}/24`, 'dev', 'lbs0');
    inNs('lb-s', 'ip', 'addr', 'add', `${OTHER}/24`, 'dev', 'lbs0');
    for (const [ns, devs] of [
      ['lb-c', ['lo', 'lbc0']],
      ['lb-r', ['lo', 'lbr0', 'lbwwan0']],
      ['lb-s', ['lo', 'lbs0']],
    ] as const)
      for (const d of devs) inNs(ns, 'ip', 'link', 'set', d, 'up');
    inNs('lb-c', 'ip', 'route', 'add', 'default', 'via', '10.91.1.1');
    inNs('lb-s', 'ip', 'route', 'add', 'default', 'via', '10.91.2.1');
    inNs('lb-r', 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
    server = spawn('ip', [
      'netns',
      'exec',
      'lb-s',
      process.execPath,
      '-e',
      `require('net').createServer(s=>{s.on('error',()=>{});s.end(Buffer.alloc(${SIZE}))}).listen(${PORT},()=>console.log('up'))`,
    ]);
    await new Promise<void>((r) => server!.stdout!.once('data', () => r()));
  });

  after(() => {
    server?.kill('SIGKILL');
    cleanup();
  });

  it('without a policy both servers are reachable (the lab itself works)', async () => {
    assert.equal((await fetchFrom(CRIT)).bytes, SIZE);
    assert.equal((await fetchFrom(OTHER)).bytes, SIZE);
  });

  it('block: the allow-listed destination passes, everything else on 4G is dropped', async () => {
    assert.equal(await applier.apply(renderPolicy(spec('block'))), true);
    assert.equal((await fetchFrom(CRIT)).bytes, SIZE);
    assert.equal((await fetchFrom(OTHER)).bytes, -1);
    const listed = inNs('lb-r', 'nft', 'list', 'table', 'inet', 'surgery_edge_4g');
    assert.match(listed, /critical clinical/);
  });

  it('re-applying is idempotent and repairs a flushed table', async () => {
    const script = renderPolicy(spec('block'));
    assert.equal(await applier.apply(script), false, 'unchanged and present: nothing to do');
    inNs('lb-r', 'nft', 'delete', 'table', 'inet', 'surgery_edge_4g'); // someone flushed it by hand
    assert.equal(await applier.apply(script), true);
    await applier.apply(renderPolicy(spec('block', 64)));
    const tables = inNs('lb-r', 'nft', 'list', 'tables')
      .split('\n')
      .filter((l) => l.includes('surgery_edge_4g'));
    assert.equal(tables.length, 1);
    assert.equal((await fetchFrom(OTHER)).bytes, -1);
  });

  it('rate-limit: non-critical traffic is slowed, critical is not', async () => {
    await applier.apply(renderPolicy(spec('rate-limit', 32)));
    const crit = await fetchFrom(CRIT, 10_000);
    const other = await fetchFrom(OTHER, 30_000);
    assert.equal(crit.bytes, SIZE);
    assert.equal(other.bytes, SIZE, 'rate-limited, not blocked');
    // 256 KiB at 32 kB/s takes about 8 s; unlimited it takes milliseconds.
    assert.ok(other.ms > 3_000, `non-critical took ${other.ms} ms`);
    assert.ok(crit.ms < 1_500, `critical took ${crit.ms} ms`);
  });

  it('allow: everything passes again', async () => {
    await applier.apply(renderPolicy(spec('allow')));
    assert.equal((await fetchFrom(OTHER)).bytes, SIZE);
  });
});
