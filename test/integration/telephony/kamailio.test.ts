import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ProcessRunner } from '../../../agent/src/platform/command.js';
import { systemClock } from '../../../agent/src/core/clock.js';
import { TelephonyCapability } from '../../../agent/src/telephony/telephony.js';
import { createTestCtx, type TestCtx } from '../../helpers/ctx.js';
import { freePort } from '../../helpers/mosquitto.js';
import { REPO } from '../../lab/lab.js';

/**
 * Real kamailio (driven by the capability, on its own free port and runtime dir) and SIPp
 * handsets/PBX/emergency trunk on loopback addresses. Proves the registrar, digest auth, local
 * calls, 999 and the OPTIONS-driven switch to survivable mode.
 */
const have = (b: string) => spawnSync(b, ['-v']).status !== null && !spawnSync(b, ['-v']).error;
const skip = !have('kamailio') ? 'kamailio not installed' : !have('sipp') ? 'sipp not installed (sip-tester)' : false;
const F = join(REPO, 'test/fixtures/sipp');

function sipp(args: string[], timeoutS = 10): Promise<number> {
  return new Promise((res) => {
    const c = spawn('sipp', [...args, '-nostdin', '-timeout', String(timeoutS), '-timeout_error'], { stdio: 'ignore' });
    c.on('exit', (code) => res(code ?? -1));
  });
}

describe('telephony with real kamailio and SIPp', { skip }, () => {
  let ctx: TestCtx;
  let cap: TelephonyCapability;
  const bg: ChildProcess[] = [];
  let port = 0;
  let pbxPort = 0;
  let emPort = 0;
  let bPort = 0;
  let pbx: ChildProcess;

  before(async () => {
    port = await freePort();
    pbxPort = await freePort();
    emPort = await freePort();
    bPort = await freePort();
    pbx = spawn('sipp', ['-sf', join(F, 'pbx.xml'), '-i', '127.0.0.3', '-p', String(pbxPort), '-aa', '-nostdin'], { stdio: 'ignore' });
    bg.push(pbx);
    bg.push(spawn('sipp', ['-sf', join(F, 'handset.xml'), '-i', '127.0.0.4', '-p', String(emPort), '-aa', '-nostdin'], { stdio: 'ignore' }));
    bg.push(spawn('sipp', ['-sf', join(F, 'handset.xml'), '-i', '127.0.0.1', '-p', String(bPort), '-aa', '-nostdin'], { stdio: 'ignore' }));
    ctx = createTestCtx({
      clock: systemClock,
      commands: new ProcessRunner(),
      config: {
        telephony: {
          enabled: true,
          listen: '127.0.0.1',
          port,
          lanSubnets: ['127.0.0.1/32'],
          extensions: [
            { ext: '1001', password: 'secret-1001' },
            { ext: '1002', password: 'secret-1002' },
          ],
          pbx: { host: '127.0.0.3', port: pbxPort },
          emergency: { trunk: { host: '127.0.0.4', port: emPort } },
          probe: { intervalS: 1, failAfter: 2, recoverAfter: 2, timeoutMs: 500 },
          pollMs: 250,
          firewall: { enabled: false },
        },
      },
    });
    cap = new TelephonyCapability();
    await cap.start(ctx);
  });

  after(async () => {
    await cap?.stop();
    for (const c of bg) c.kill('SIGKILL');
    ctx?.cleanup();
  });

  const waitMode = async (mode: string, ms: number) => {
    const t0 = Date.now();
    while (Date.now() - t0 < ms) {
      if (cap.health().details?.mode === mode) return Date.now() - t0;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`mode ${mode} not reached in ${ms} ms: ${JSON.stringify(cap.health())}`);
  };
  const k = `127.0.0.1:0`;
  void k;
  const target = () => `127.0.0.1:${port}`;

  it('starts kamailio and reports cloud mode while the PBX answers OPTIONS', async () => {
    await waitMode('cloud', 8000);
    assert.equal(cap.health().details?.pbxReachable, true);
  });

  it('999 is routable in cloud mode without credentials', async () => {
    assert.equal(await sipp([target(), '-sf', join(F, 'call.xml'), '-s', '999', '-i', '127.0.0.1', '-key', 'user', '5555', '-m', '1', '-d', '200']), 0);
  });

  it('PBX dead -> survivable mode; local registrar with digest auth; ext-to-ext call; wrong password 403', async () => {
    pbx.kill('SIGKILL');
    const ms = await waitMode('survivable', 10_000);
    assert.ok(ms < 10_000);
    assert.equal(await sipp([target(), '-sf', join(F, 'register.xml'), '-i', '127.0.0.1', '-key', 'user', '1002', '-key', 'cport', String(bPort), '-au', '1002', '-ap', 'secret-1002', '-m', '1']), 0);
    assert.notEqual(await sipp([target(), '-sf', join(F, 'register.xml'), '-i', '127.0.0.1', '-key', 'user', '1002', '-key', 'cport', String(bPort), '-au', '1002', '-ap', 'wrong-password', '-m', '1'], 5), 0);
    assert.equal(await sipp([target(), '-sf', join(F, 'call.xml'), '-s', '1002', '-i', '127.0.0.1', '-key', 'user', '1001', '-au', '1001', '-ap', 'secret-1001', '-m', '1', '-d', '300']), 0);
    assert.notEqual(await sipp([target(), '-sf', join(F, 'call.xml'), '-s', '1002', '-i', '127.0.0.1', '-key', 'user', '1001', '-au', '1001', '-ap', 'bad-secret', '-m', '1', '-d', '300'], 5), 0);
    await new Promise((r) => setTimeout(r, 500));
    assert.ok((cap.health().details?.registered as number) >= 1);
  });

  it('999 is routable in survivable mode (emergency trunk), no credentials', async () => {
    assert.equal(await sipp([target(), '-sf', join(F, 'call.xml'), '-s', '999', '-i', '127.0.0.1', '-key', 'user', '5555', '-m', '1', '-d', '200']), 0);
    assert.equal(await sipp([target(), '-sf', join(F, 'call.xml'), '-s', '112', '-i', '127.0.0.1', '-key', 'user', '5555', '-m', '1', '-d', '200']), 0);
  });

  it('kamailio killed -> restarted by the supervisor', async () => {
    const pid = Number((await import('node:fs')).readFileSync(join(cap.dir, 'kamailio.pid'), 'utf8'));
    process.kill(pid, 'SIGKILL');
    await waitMode('down', 5000);
    await waitMode('survivable', 15_000);
    assert.ok((cap.health().details?.restarts as number) >= 1);
  });
});
