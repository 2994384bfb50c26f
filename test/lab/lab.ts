/**
 * The failover lab: Linux network namespaces standing in for a surgery, its two ISPs and the
 * internet. Used by test/integration/failover, test/bench/failover.ts, `make demo`, and by other
 * areas' tests (drills, live status page). Needs root.
 *
 *   <p>-lan  eth0 192.168.50.10 ──── lan0 192.168.50.1   <p>-app (the appliance; agent runs here)
 *                                    wan0 10.201.1.2  ──── down0 10.201.1.1  <p>-isp1 (primary ISP)
 *                                    wwan0 10.201.2.2 ──── down0 10.201.2.1  <p>-isp2 (4G carrier)
 *   <p>-isp1 up0 10.201.11.1 ── isp1 10.201.11.2  <p>-net ("internet": targets 198.51.100.1-4 on lo,
 *   <p>-isp2 up0 10.201.12.1 ── isp2 10.201.12.2           HTTP/TCP :80 and DNS :53 on every target)
 * The ISPs route (no NAT), so the internet sees the appliance's own uplink address: that is how
 * a LAN client tells which uplink carried its connection (GET /whoami -> {"you": addr}).
 *
 * API (all async, idempotent where it makes sense):
 *   const lab = createLab({ prefix: 'xy', lateAttach4g?: boolean });
 *   await lab.up(); ... await lab.down();          // up() first removes leftovers of the same prefix
 *   lab.ns.{lan,app,isp1,isp2,net}                 // namespace names
 *   lab.exec(ns, cmd, args, opts?)                 // run a command inside a namespace (RunResult)
 *   Faults on an ISP ('primary' | 'cellular'):
 *     cutCarrier(isp)   peer end down: the appliance sees NO-CARRIER
 *     blackhole(isp)    ISP silently drops everything (carrier stays up)
 *     loss(isp, pct)    random loss in both directions (nft numgen), pct 0 removes it
 *     blockDns(isp)     drops DNS (UDP and TCP 53, both directions) through the ISP; all else fine
 *     delay(isp, rttMs) adds rttMs to every round trip through the ISP, no loss (rttMs/2 each way;
 *                       a userspace TUN delay line, test/lab/delay-line.py: this kernel has no netem)
 *     restore(isp)      undo all of the above for that ISP
 *   killTarget(addr) / reviveTarget(addr)          // one internet target stops answering (drop)
 *   attach4g()                                     // lateAttach4g: give wwan0 its address, modem connects
 *   modem(patch)                                   // edit the fake modem's state (vanish: {present: false})
 *   agentConfig(overrides?)                        // config doc for an agent in the lab (deep-merged)
 *   startAgent({ config?, cellular?, pretty?, echo?, onLog? }) // agent/bin/surgery-edge run inside <p>-app
 *       cellular (default true): the fake mmcli (test/helpers/fake-mmcli) is first on the agent's
 *       PATH with a modem connected on wwan0 (bearer = the lab's wwan address; searching until
 *       attach4g() with lateAttach4g). false: cellular.enabled=false and no mmcli at all.
 *       -> { configFile, logs, waitForLog(pred, ms), status(), stop() }
 *   startClient({ intervalMs?, timeoutMs? })        // LAN PC opening new connections continuously
 *   lanResolve(name?, server?)                     // one DNS lookup from the LAN PC (through the
 *       appliance's NAT to the internet resolver, default 198.51.100.3) -> { ok, ms, addresses?, error? }
 *       -> { results, waitFor(pred, ms), stop() }
 *   LAB (addresses) is exported too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { ProcessRunner, type RunOptions, type RunResult } from '../../agent/src/platform/command.js';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, '../..');

export const LAB = {
  lanClient: '192.168.50.10',
  lanGateway: '192.168.50.1',
  lanSubnet: '192.168.50.0/24',
  wan: '10.201.1.2',
  wanGateway: '10.201.1.1',
  wwan: '10.201.2.2',
  wwanGateway: '10.201.2.1',
  targets: ['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4'],
} as const;

export type Isp = 'primary' | 'cellular';

export interface LabAgent {
  /** The generated config file (for `surgery-edge status --config`). */
  configFile: string;
  logs: Record<string, unknown>[];
  waitForLog(pred: (e: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  status(): { capabilities: Record<string, { status: string; summary: string; details?: Record<string, unknown> }> } | null;
  stop(): Promise<void>;
}

export interface ClientResult {
  start: number;
  end: number;
  ok: boolean;
  via: string | null;
}

export interface LanClient {
  results: ClientResult[];
  waitFor(pred: (r: ClientResult) => boolean, timeoutMs?: number): Promise<ClientResult>;
  stop(): Promise<void>;
}

export interface Lab {
  ns: { lan: string; app: string; isp1: string; isp2: string; net: string };
  up(): Promise<void>;
  down(): Promise<void>;
  exec(ns: string, cmd: string, args: string[], opts?: RunOptions): Promise<RunResult>;
  cutCarrier(isp: Isp): Promise<void>;
  blackhole(isp: Isp): Promise<void>;
  loss(isp: Isp, pct: number): Promise<void>;
  restore(isp: Isp): Promise<void>;
  blockDns(isp: Isp): Promise<void>;
  delay(isp: Isp, rttMs: number): Promise<void>;
  killTarget(addr: string): Promise<void>;
  reviveTarget(addr: string): Promise<void>;
  attach4g(): Promise<void>;
  modem(patch: Record<string, unknown>): void;
  agentConfig(overrides?: Record<string, unknown>): Record<string, unknown>;
  startAgent(opts?: {
    config?: Record<string, unknown>;
    cellular?: boolean;
    pretty?: boolean;
    echo?: boolean;
    onLog?: (e: Record<string, unknown>) => void;
  }): Promise<LabAgent>;
  startClient(opts?: { intervalMs?: number; timeoutMs?: number }): Promise<LanClient>;
  lanResolve(name?: string, server?: string): Promise<LanResolve>;
}

export interface LanResolve {
  ok: boolean;
  ms: number;
  addresses?: string[];
  error?: string;
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)
        ? deepMerge(cur as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** Wait for a line-producing child to print something matching; rejects on exit or timeout. */
function lines(child: ChildProcess, stream: 'stdout' | 'stderr', onLine: (l: string) => void): void {
  createInterface({ input: child[stream]! }).on('line', onLine);
}

const FAKE_MMCLI_DIR = join(REPO, 'test/helpers/fake-mmcli');

export function createLab(opts: { prefix: string; lateAttach4g?: boolean }): Lab {
  const p = opts.prefix;
  const ns = { lan: `${p}-lan`, app: `${p}-app`, isp1: `${p}-isp1`, isp2: `${p}-isp2`, net: `${p}-net` };
  const runner = new ProcessRunner(15_000);
  const children = new Set<ChildProcess>();
  const clean = () => ({ blackhole: false, loss: 0, dns: false });
  const faults: Record<Isp, { blackhole: boolean; loss: number; dns: boolean }> = { primary: clean(), cellular: clean() };
  const dead = new Set<string>();
  const delayLines: Partial<Record<Isp, ChildProcess>> = {};
  let tmp = '';
  let modemState: Record<string, unknown> = {};
  const modemFile = () => join(tmp, 'modem.json');
  // Written whole and renamed: the fake mmcli may read it at any moment.
  const writeModem = () => {
    writeFileSync(modemFile() + '.tmp', JSON.stringify(modemState));
    renameSync(modemFile() + '.tmp', modemFile());
  };

  // Never leave an agent or server running if the test process dies first.
  process.once('exit', () => {
    for (const c of children) c.kill('SIGKILL');
  });
  const ip = (args: string[]) => runner.run('ip', args);
  const exec = (n: string, cmd: string, args: string[], o?: RunOptions) => runner.run('ip', ['netns', 'exec', n, cmd, ...args], o);
  const ispNs = (isp: Isp) => (isp === 'primary' ? ns.isp1 : ns.isp2);

  /** SIGTERM, then SIGKILL after 10 s; resolves once the process has exited. */
  async function end(c: ChildProcess): Promise<void> {
    if (c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }

  // Ctrl-C in `make demo` / a bench: tear down instead of leaving namespaces and processes behind
  // (`ip netns del` does not end the processes inside a namespace).
  const onSignal = (sig: NodeJS.Signals) => {
    void down().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };

  async function down(): Promise<void> {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await Promise.all([...children].map(end));
    children.clear();
    for (const k of Object.keys(delayLines) as Isp[]) delete delayLines[k];
    const list = await runner.run('ip', ['netns', 'list'], { allowFailure: true });
    for (const n of Object.values(ns)) if (new RegExp(`^${n}( |$)`, 'm').test(list.stdout)) await runner.run('ip', ['netns', 'del', n], { allowFailure: true });
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    tmp = '';
  }

  async function veth(a: string, an: string, b: string, bn: string): Promise<void> {
    await ip(['link', 'add', an, 'netns', a, 'type', 'veth', 'peer', 'name', bn, 'netns', b]);
  }

  async function addr(n: string, dev: string, cidr: string): Promise<void> {
    await ip(['-n', n, 'addr', 'add', cidr, 'dev', dev]);
    await ip(['-n', n, 'link', 'set', dev, 'up']);
  }

  async function applyFaults(isp: Isp): Promise<void> {
    const f = faults[isp];
    const rules = [
      f.blackhole ? 'drop' : '',
      f.loss > 0 ? `numgen random mod 100 < ${f.loss} drop` : '',
      f.dns ? 'meta l4proto { udp, tcp } th dport 53 drop' : '',
      f.dns ? 'meta l4proto { udp, tcp } th sport 53 drop' : '',
    ].filter(Boolean);
    const script =
      `table inet labfault {}\ndelete table inet labfault\ntable inet labfault {\n  chain lab_fwd { type filter hook forward priority ` +
      `-10; policy accept;\n${rules.map((r) => `    ${r}\n`).join('')}  }\n` +
      `  chain lab_in { type filter hook input priority -10; policy accept;\n${f.blackhole ? '    iifname "down0" drop\n' : ''}  }\n}\n`;
    await exec(ispNs(isp), 'nft', ['-f', '-'], { input: script });
  }

  async function removeDelay(isp: Isp): Promise<void> {
    const c = delayLines[isp];
    if (!c) return;
    delete delayLines[isp];
    const n = ispNs(isp);
    for (const pref of ['100', '101']) await ip(['-n', n, 'rule', 'del', 'pref', pref]).catch(() => undefined);
    await end(c);
    children.delete(c);
  }

  async function applyDead(): Promise<void> {
    const set = [...dead].join(', ');
    const script =
      `table inet labdead {}\ndelete table inet labdead\ntable inet labdead {\n  chain lab_in { type filter hook input priority -10; ` +
      `policy accept;\n${dead.size ? `    ip daddr { ${set} } drop\n` : ''}  }\n}\n`;
    await exec(ns.net, 'nft', ['-f', '-'], { input: script });
  }

  const lab: Lab = {
    ns,
    exec,
    down,
    async up() {
      await down();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      tmp = mkdtempSync(join(tmpdir(), `${p}-lab-`));
      // The modem behind wwan0: connected with the lab's 4G address, or (late attach) searching
      // until attach4g(), so --simple-connect fails the way it does without coverage.
      modemState = {
        netInterface: 'wwan0',
        bearer: { connected: !opts.lateAttach4g, address: LAB.wwan, gateway: LAB.wwanGateway },
        ...(opts.lateAttach4g ? { attachAt: Date.now() + 24 * 3600_000 } : {}),
      };
      writeModem();
      for (const n of Object.values(ns)) {
        await ip(['netns', 'add', n]);
        await ip(['-n', n, 'link', 'set', 'lo', 'up']);
      }
      // The LAN PC is IPv4-only: a browser there (status tests) aborts a page load with
      // ERR_NETWORK_CHANGED when an IPv6 link-local address finishes DAD under it.
      await exec(ns.lan, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
      await veth(ns.lan, 'eth0', ns.app, 'lan0');
      await veth(ns.app, 'wan0', ns.isp1, 'down0');
      await veth(ns.app, 'wwan0', ns.isp2, 'down0');
      await veth(ns.isp1, 'up0', ns.net, 'isp1');
      await veth(ns.isp2, 'up0', ns.net, 'isp2');
      await addr(ns.lan, 'eth0', `${LAB.lanClient}/24`);
      await addr(ns.app, 'lan0', `${LAB.lanGateway}/24`);
      await addr(ns.app, 'wan0', `${LAB.wan}/24`);
      if (opts.lateAttach4g) await ip(['-n', ns.app, 'link', 'set', 'wwan0', 'up']);
      else await addr(ns.app, 'wwan0', `${LAB.wwan}/24`);
      await addr(ns.isp1, 'down0', `${LAB.wanGateway}/24`);
      await addr(ns.isp2, 'down0', `${LAB.wwanGateway}/24`);
      await addr(ns.isp1, 'up0', '10.201.11.1/24');
      await addr(ns.isp2, 'up0', '10.201.12.1/24');
      await addr(ns.net, 'isp1', '10.201.11.2/24');
      await addr(ns.net, 'isp2', '10.201.12.2/24');
      for (const t of LAB.targets) await ip(['-n', ns.net, 'addr', 'add', `${t}/32`, 'dev', 'lo']);
      await ip(['-n', ns.lan, 'route', 'add', 'default', 'via', LAB.lanGateway]);
      await ip(['-n', ns.isp1, 'route', 'add', 'default', 'via', '10.201.11.2']);
      await ip(['-n', ns.isp2, 'route', 'add', 'default', 'via', '10.201.12.2']);
      await ip(['-n', ns.net, 'route', 'add', '10.201.1.0/24', 'via', '10.201.11.1']);
      await ip(['-n', ns.net, 'route', 'add', '10.201.2.0/24', 'via', '10.201.12.1']);
      for (const n of [ns.app, ns.isp1, ns.isp2]) await exec(n, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
      // The internet: one server process answering on every target address.
      const server = spawn('ip', ['netns', 'exec', ns.net, process.execPath, join(here, 'target-server.ts'), ...LAB.targets], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.add(server);
      await new Promise<void>((res, rej) => {
        const t = setTimeout(() => rej(new Error('lab target server did not start')), 15_000);
        lines(server, 'stdout', (l) => {
          if (l === 'ready') {
            clearTimeout(t);
            res();
          }
        });
        server.once('exit', (c) => rej(new Error(`lab target server exited ${c}`)));
      });
    },
    async cutCarrier(isp) {
      await ip(['-n', ispNs(isp), 'link', 'set', 'down0', 'down']);
    },
    async blackhole(isp) {
      faults[isp].blackhole = true;
      await applyFaults(isp);
    },
    async loss(isp, pct) {
      faults[isp].loss = pct;
      await applyFaults(isp);
    },
    async delay(isp, rttMs) {
      await removeDelay(isp);
      if (rttMs <= 0) return;
      const n = ispNs(isp);
      const child = spawn('ip', ['netns', 'exec', n, 'python3', join(here, 'delay-line.py'), 'dly0', String(rttMs / 2)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.add(child);
      delayLines[isp] = child;
      await new Promise<void>((res, rej) => {
        const t = setTimeout(() => rej(new Error('lab delay line did not start')), 10_000);
        lines(child, 'stdout', (l) => l === 'ready' && (clearTimeout(t), res()));
        child.once('exit', (c) => (clearTimeout(t), rej(new Error(`lab delay line exited ${c}`))));
      });
      // Written back into dly0, a packet must pass the reverse-path check on an interface it has no route back through.
      for (const k of ['all', 'default', 'dly0']) await exec(n, 'sysctl', ['-qw', `net.ipv4.conf.${k}.rp_filter=0`]);
      await ip(['-n', n, 'link', 'set', 'dly0', 'up']);
      await ip(['-n', n, 'route', 'add', 'default', 'dev', 'dly0', 'table', '200']);
      await ip(['-n', n, 'rule', 'add', 'iif', 'down0', 'lookup', '200', 'pref', '100']);
      await ip(['-n', n, 'rule', 'add', 'iif', 'up0', 'lookup', '200', 'pref', '101']);
    },
    async restore(isp) {
      await removeDelay(isp);
      faults[isp] = clean();
      await applyFaults(isp);
      await ip(['-n', ispNs(isp), 'link', 'set', 'down0', 'up']);
    },
    async blockDns(isp) {
      faults[isp].dns = true;
      await applyFaults(isp);
    },
    async killTarget(a) {
      dead.add(a);
      await applyDead();
    },
    async reviveTarget(a) {
      dead.delete(a);
      await applyDead();
    },
    async attach4g() {
      await ip(['-n', ns.app, 'addr', 'replace', `${LAB.wwan}/24`, 'dev', 'wwan0']);
      lab.modem({ attachAt: null, bearer: { connected: true, address: LAB.wwan, gateway: LAB.wwanGateway } });
    },
    modem(patch) {
      modemState = { ...modemState, ...patch };
      writeModem();
    },
    agentConfig(overrides = {}) {
      const targets = [
        { kind: 'tcp', host: LAB.targets[0], port: 80 },
        { kind: 'http', host: LAB.targets[1], port: 80, path: '/generate_204', expectStatus: 204 },
        { kind: 'dns', host: LAB.targets[2], query: 'nhs.uk' },
        { kind: 'tcp', host: LAB.targets[3], port: 80 },
      ];
      const probes = { intervalMs: 250, timeoutMs: 600, targets };
      const base = {
        site: { deviceId: `${p}-lab-appliance`, practiceName: 'Lab Surgery' },
        paths: { stateDir: join(tmp, 'state'), runDir: join(tmp, 'run'), root: '/' },
        log: { level: 'info', format: 'json' },
        uplinks: [
          { name: 'wan', interface: 'wan0', kind: 'wired', priority: 1, table: 101, gateway: LAB.wanGateway, probes },
          { name: '4g', interface: 'wwan0', kind: 'cellular', priority: 2, table: 102, gateway: LAB.wwanGateway, probes },
        ],
        failover: { holdDownMs: 5000, lan: { interface: 'lan0', subnet: LAB.lanSubnet } },
      };
      return deepMerge(base, overrides);
    },
    async startAgent(o = {}) {
      const cellular = o.cellular ?? true;
      const doc = lab.agentConfig(cellular ? o.config : deepMerge(o.config ?? {}, { cellular: { enabled: false } }));
      if (o.pretty) (doc.log as Record<string, unknown>).format = 'pretty';
      const file = join(tmp, `agent-${Date.now()}.yaml`);
      writeFileSync(file, stringify(doc));
      const runDir = (doc.paths as { runDir: string }).runDir;
      const env = cellular ? { ...process.env, PATH: `${FAKE_MMCLI_DIR}:${process.env.PATH ?? ''}`, FAKE_MMCLI_STATE: modemFile() } : process.env;
      const child = spawn('ip', ['netns', 'exec', ns.app, join(REPO, 'agent/bin/surgery-edge'), 'run', '--config', file], {
        stdio: ['ignore', 'inherit', 'pipe'],
        env,
      });
      children.add(child);
      const logs: Record<string, unknown>[] = [];
      const waiters = new Set<{ pred: (e: Record<string, unknown>) => boolean; res: (e: Record<string, unknown>) => void }>();
      lines(child, 'stderr', (l) => {
        if (o.echo || o.pretty) process.stderr.write(l + '\n');
        let e: Record<string, unknown>;
        try {
          e = JSON.parse(l) as Record<string, unknown>;
        } catch {
          e = { msg: l };
        }
        e.receivedAt = Date.now();
        logs.push(e);
        o.onLog?.(e);
        for (const w of waiters) if (w.pred(e)) (waiters.delete(w), w.res(e));
      });
      const agent: LabAgent = {
        configFile: file,
        logs,
        waitForLog(pred, timeoutMs = 20_000) {
          const hit = logs.find(pred);
          if (hit) return Promise.resolve(hit);
          return new Promise((res, rej) => {
            const w = { pred, res: (e: Record<string, unknown>) => (clearTimeout(t), res(e)) };
            const t = setTimeout(() => (waiters.delete(w), rej(new Error(`agent log not seen within ${timeoutMs} ms`))), timeoutMs);
            waiters.add(w);
          });
        },
        status() {
          try {
            return JSON.parse(readFileSync(join(runDir, 'status.json'), 'utf8'));
          } catch {
            return null;
          }
        },
        async stop() {
          await end(child);
          children.delete(child);
        },
      };
      if (!o.pretty) await agent.waitForLog((e) => e.msg === 'agent running', 60_000);
      return agent;
    },
    async lanResolve(name = 'nhs.uk', server = LAB.targets[2]) {
      const r = await exec(ns.lan, process.execPath, [join(here, 'lan-resolve.ts'), server, name, '1500'], { allowFailure: true, timeoutMs: 10_000 });
      try {
        return JSON.parse(r.stdout.trim()) as LanResolve;
      } catch {
        return { ok: false, ms: 0, error: `lan-resolve printed nothing parseable: ${r.stderr.trim().slice(0, 200)}` };
      }
    },
    async startClient(o = {}) {
      const child = spawn(
        'ip',
        [
          'netns',
          'exec',
          ns.lan,
          process.execPath,
          join(here, 'lan-client.ts'),
          `http://${LAB.targets[0]}/whoami`,
          String(o.intervalMs ?? 100),
          String(o.timeoutMs ?? 1500),
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      children.add(child);
      const results: ClientResult[] = [];
      const waiters = new Set<{ pred: (r: ClientResult) => boolean; res: (r: ClientResult) => void }>();
      lines(child, 'stdout', (l) => {
        const r = JSON.parse(l) as ClientResult;
        results.push(r);
        for (const w of waiters) if (w.pred(r)) (waiters.delete(w), w.res(r));
      });
      return {
        results,
        waitFor(pred, timeoutMs = 20_000) {
          return new Promise((res, rej) => {
            const w = { pred, res: (r: ClientResult) => (clearTimeout(t), res(r)) };
            const t = setTimeout(() => (waiters.delete(w), rej(new Error(`LAN client: condition not met within ${timeoutMs} ms`))), timeoutMs);
            waiters.add(w);
          });
        },
        async stop() {
          await end(child);
          children.delete(child);
        },
      };
    },
  };
  return lab;
}
