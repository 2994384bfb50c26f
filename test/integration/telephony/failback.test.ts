/**
 * Failback without dropping a call: a call set up locally in survivable mode stays up while the
 * cloud PBX comes back and the mode returns to cloud; its in-dialog BYE still reaches the other
 * handset (Record-Route through the appliance, whatever the mode); new calls then go via the PBX.
 */
import assert from 'node:assert/strict';
import { reported } from '../../helpers/reports.js';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../../helpers/mosquitto.js';
import { call, register, sipSkip, FAST_PROBE, LAB_SIP, StandIns, startLabTelephony, type startTelephony, waitMode } from '../../helpers/sipp.js';

const skip = sipSkip();
const K = LAB_SIP.listen;
const A = '127.0.1.11';
const B = '127.0.1.12';
const PBX = '127.0.0.3';

describe('failback to the cloud PBX with a call in progress', { skip }, () => {
  let t: Awaited<ReturnType<typeof startTelephony>>;
  const standIns = new StandIns();
  let port = 0;
  let bPort = 0;
  let pbxPort = 0;

  before(async () => {
    [port, bPort, pbxPort] = [await freePort(), await freePort(), await freePort()];
    standIns.start('handset.xml', B, bPort, 'b');
    // No PBX yet: the appliance starts in survivable mode (OPTIONS unanswered).
    await standIns.alive();
    t = await startLabTelephony(port, ['1001', '1002'], { pbx: { host: PBX, port: pbxPort }, probe: FAST_PROBE });
  });
  after(async () => {
    await t?.stop();
    await standIns.killAll();
  });

  const calls = () => reported(t.cap).details?.callsInProgress as number;
  const until = async (pred: () => boolean, ms: number, what: string) => {
    const t0 = Date.now();
    while (!pred()) {
      if (Date.now() - t0 > ms) assert.fail(`${what} not within ${ms} ms: ${JSON.stringify(reported(t.cap).details)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  it('survivable call survives the PBX coming back; BYE after failback works; new calls go to the PBX', async () => {
    await waitMode(t.cap, 'survivable', 10_000);
    assert.equal(await register({ target: `${K}:${port}`, ip: B, ext: '1002', password: 'secret-1002', cport: bPort, expect: 'appliance' }), 0);
    // A long local call: answered by handset B, held 6 s, then BYE.
    const inProgress = call({ target: `${K}:${port}`, ip: A, from: '1001', to: '1002', password: 'secret-1001', expect: 'b', holdMs: 6000, timeoutS: 15 });
    await until(() => calls() === 1, 3000, 'the local call counted in progress');
    standIns.start('pbx.xml', PBX, pbxPort, 'pbx');
    await waitMode(t.cap, 'cloud', 5000);
    assert.equal(calls(), 1, 'failback happened while the call was still up');
    assert.equal(await inProgress, 0, 'the call ended normally: its BYE reached handset B and was answered');
    await until(() => calls() === 0, 3000, 'the call no longer counted');
    assert.equal(
      await call({ target: `${K}:${port}`, ip: A, from: '1001', to: '1002', password: 'secret-1001', expect: 'pbx' }),
      0,
      'a new call goes via the PBX',
    );
  });
});
