import assert from 'node:assert/strict';
import { reported } from '../../helpers/reports.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { freePort } from '../../helpers/mosquitto.js';
import { call, register, sipSkip, FAST_PROBE, LAB_SIP, StandIns, startLabTelephony, type startTelephony, waitMode } from '../../helpers/sipp.js';

/**
 * Real kamailio (driven by the capability, on its own free port and runtime dir) and SIPp
 * handsets/PBX/emergency trunk on loopback addresses. Proves the registrar, digest auth, local
 * calls, 999 and the OPTIONS-driven switch to survivable mode. Every answered call is checked for
 * who answered it (X-Answered-By), so a stand-in that did not run cannot make a test pass.
 */
const skip = sipSkip();
const K = LAB_SIP.listen;
const A = '127.0.1.11';
const B = '127.0.1.12';

describe('telephony with real kamailio and SIPp', { skip }, () => {
  let t: Awaited<ReturnType<typeof startTelephony>>;
  const standIns = new StandIns();
  let port = 0;
  let bPort = 0;
  let pbx: ChildProcess;

  before(async () => {
    const [pbxPort, emPort] = [await freePort(), await freePort()];
    [port, bPort] = [await freePort(), await freePort()];
    pbx = standIns.start('pbx.xml', '127.0.0.3', pbxPort, 'pbx');
    standIns.start('handset.xml', '127.0.0.4', emPort, 'emergency');
    standIns.start('handset.xml', B, bPort, 'b');
    await standIns.alive();
    t = await startLabTelephony(port, ['1001', '1002'], {
      pbx: { host: '127.0.0.3', port: pbxPort },
      emergency: { trunk: { host: '127.0.0.4', port: emPort } },
      probe: FAST_PROBE,
    });
  });

  after(async () => {
    await t?.stop();
    await standIns.killAll();
  });

  const target = () => `${K}:${port}`;

  it('starts kamailio and reports cloud mode while the PBX answers OPTIONS', async () => {
    await waitMode(t.cap, 'cloud', 8000);
    assert.equal(reported(t.cap).details?.pbxReachable, true);
  });

  it('cloud mode: a REGISTER goes to the PBX (its 200 comes back), calls go to the PBX', async () => {
    assert.equal(await register({ target: target(), ip: B, ext: '1002', password: 'secret-1002', cport: bPort, expect: 'pbx' }), 0);
    assert.equal(await call({ target: target(), ip: A, from: '1001', to: '1002', password: 'secret-1001', expect: 'pbx' }), 0);
  });

  it('999 is routed to the PBX in cloud mode without credentials', async () => {
    assert.equal(await call({ target: target(), ip: A, from: '5555', to: '999', expect: 'pbx', holdMs: 200 }), 0);
  });

  it('PBX dead -> survivable; the binding seen in cloud mode rings at once; local registrar with digest auth; wrong password refused', async () => {
    await standIns.kill(pbx);
    await waitMode(t.cap, 'survivable', 10_000);
    // 1002 registered through the PBX only: kamailio kept the binding, no re-registration needed.
    assert.equal(await call({ target: target(), ip: A, from: '1001', to: '1002', password: 'secret-1001', expect: 'b', holdMs: 300 }), 0);
    assert.equal(await register({ target: target(), ip: B, ext: '1002', password: 'secret-1002', cport: bPort, expect: 'appliance' }), 0);
    assert.notEqual(await register({ target: target(), ip: B, ext: '1002', password: 'wrong-password', cport: bPort, expect: 'appliance' }), 0);
    assert.notEqual(await call({ target: target(), ip: A, from: '1001', to: '1002', password: 'bad-secret', expect: 'b', timeoutS: 5 }), 0);
    await new Promise((r) => setTimeout(r, 500));
    assert.ok((reported(t.cap).details?.registered as number) >= 1);
  });

  it('999 and 112 are routed to the emergency trunk in survivable mode, no credentials', async () => {
    assert.equal(await call({ target: target(), ip: A, from: '5555', to: '999', expect: 'emergency', holdMs: 200 }), 0);
    assert.equal(await call({ target: target(), ip: A, from: '5555', to: '112', expect: 'emergency', holdMs: 200 }), 0);
  });

  it('kamailio killed -> restarted by the supervisor', async () => {
    const pid = Number(readFileSync(join(t.cap.dir, 'kamailio.pid'), 'utf8'));
    process.kill(pid, 'SIGKILL');
    await waitMode(t.cap, 'down', 5000);
    await waitMode(t.cap, 'survivable', 15_000);
    assert.ok((reported(t.cap).details?.restarts as number) >= 1);
  });
});
