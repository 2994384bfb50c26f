/**
 * make bench-telephony (partial): cloud PBX dead -> a handset can call another, real kamailio and
 * SIPp on loopback (not yet the namespace lab). Prints JSON lines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { systemClock } from '../../agent/src/core/clock.js';
import { ProcessRunner } from '../../agent/src/platform/command.js';
import { TelephonyCapability } from '../../agent/src/telephony/telephony.js';
import { createTestCtx } from '../helpers/ctx.js';
import { freePort } from '../helpers/mosquitto.js';
import { REPO } from '../lab/lab.js';

const F = join(REPO, 'test/fixtures/sipp');
const TRIALS = Number(process.env.TRIALS ?? 5);
const sipp = (args: string[], t = 5) => new Promise<number>((res) => spawn('sipp', [...args, '-nostdin', '-timeout', String(t), '-timeout_error'], { stdio: 'ignore' }).on('exit', (c) => res(c ?? -1)));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const [port, pbxPort, emPort, bPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
const startPbx = () => spawn('sipp', ['-sf', join(F, 'pbx.xml'), '-i', '127.0.0.3', '-p', String(pbxPort), '-aa', '-nostdin'], { stdio: 'ignore' });
let pbx: ChildProcess = startPbx();
const bg = [spawn('sipp', ['-sf', join(F, 'handset.xml'), '-i', '127.0.0.4', '-p', String(emPort), '-aa', '-nostdin'], { stdio: 'ignore' }), spawn('sipp', ['-sf', join(F, 'handset.xml'), '-i', '127.0.0.1', '-p', String(bPort), '-aa', '-nostdin'], { stdio: 'ignore' })];
const ctx = createTestCtx({
  clock: systemClock,
  commands: new ProcessRunner(),
  config: { telephony: { enabled: true, listen: '127.0.0.1', port, lanSubnets: ['127.0.0.1/32'], extensions: [{ ext: '1001', password: 'secret-1001' }, { ext: '1002', password: 'secret-1002' }], pbx: { host: '127.0.0.3', port: pbxPort }, emergency: { trunk: { host: '127.0.0.4', port: emPort } }, pollMs: 250, firewall: { enabled: false } } },
});
const cap = new TelephonyCapability();
await cap.start(ctx);
const target = `127.0.0.1:${port}`;
const call = (to: string, auth = true) => sipp([target, '-sf', join(F, 'call.xml'), '-s', to, '-i', '127.0.0.1', '-key', 'user', '1001', ...(auth ? ['-au', '1001', '-ap', 'secret-1001'] : []), '-m', '1', '-d', '100'], 3);
const waitMode = async (m: string) => { while (cap.health().details?.mode !== m) await sleep(100); };
await waitMode('cloud');
// 1002 registers through the appliance while the PBX is up (the PBX accepts it; kamailio keeps the binding).
console.log(JSON.stringify({ bench: 'telephony', registerViaPbx: await sipp([target, '-sf', join(F, 'register.xml'), '-i', '127.0.0.1', '-key', 'user', '1002', '-key', 'cport', String(bPort), '-au', '1002', '-ap', 'secret-1002', '-m', '1']), registered: cap.health().details?.registered }));
const times: number[] = [];
for (let i = 0; i < TRIALS; i++) {
  let t0 = performance.now();
  const s = performance.now();
  if ((await call('999', false)) !== 0) console.log(JSON.stringify({ bench: 'telephony', warn: '999 failed in cloud mode' }));
  const e999cloud = performance.now() - s;
  pbx.kill('SIGKILL');
  t0 = performance.now();
  while ((await call('1002')) !== 0) await sleep(200);
  times.push(performance.now() - t0);
  const s2 = performance.now();
  const ok999 = (await call('999', false)) === 0;
  console.log(JSON.stringify({ bench: 'telephony', trial: i, pbxDeadToLocalCallMs: Math.round(times.at(-1)!), e999CloudMs: Math.round(e999cloud), e999SurvivableMs: Math.round(performance.now() - s2), ok999 }));
  pbx = startPbx();
  await waitMode('cloud');
}
times.sort((a, b) => a - b);
const q = (p: number) => Math.round(times[Math.min(times.length - 1, Math.ceil(p * times.length) - 1)]!);
console.log(JSON.stringify({ bench: 'telephony', what: 'cloud PBX dead -> ext-to-ext call works', trials: TRIALS, p50Ms: q(0.5), p95Ms: q(0.95), maxMs: q(1), target: 'p95 <= 30000 (stretch 10000)' }));
await cap.stop();
pbx.kill('SIGKILL');
for (const c of bg) c.kill('SIGKILL');
ctx.cleanup();
