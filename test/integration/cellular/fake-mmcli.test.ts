import assert from 'node:assert/strict';
import { reported } from '../../helpers/reports.js';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CellularCapability } from '../../../agent/src/cellular/cellular.js';
import { systemClock } from '../../../common/clock.js';
import { ProcessRunner } from '../../../agent/src/platform/command.js';
import { createTestCtx, type TestCtx } from '../../helpers/ctx.js';

/**
 * The cellular capability against the executable fake `mmcli` (real processes, real JSON over
 * stdout, state file edited while it runs), the way the lab uses it. No root needed.
 */
describe('cellular capability with the fake mmcli on PATH', () => {
  let ctx: TestCtx;
  let cap: CellularCapability;
  let stateFile = '';
  const saved = { PATH: process.env.PATH, FAKE_MMCLI_STATE: process.env.FAKE_MMCLI_STATE };
  const setState = (s: Record<string, unknown>) => writeFileSync(stateFile, JSON.stringify(s));
  const waitModem = (modem: string, timeoutMs = 15_000) => ctx.bus.waitFor('cellular.changed', (e) => e.modem === modem, timeoutMs);

  before(() => {
    ctx = createTestCtx({
      clock: systemClock,
      commands: new ProcessRunner(),
      config: { cellular: { pollIntervalMs: 1000, reconnect: { initialMs: 200, maxMs: 1000 }, policy: { enabled: false } } },
    });
    stateFile = join(ctx.dir, 'modem.json');
    process.env.PATH = `${resolve(import.meta.dirname, '../../helpers/fake-mmcli')}:${process.env.PATH}`;
    process.env.FAKE_MMCLI_STATE = stateFile;
    cap = new CellularCapability();
  });

  after(async () => {
    await cap.stop();
    ctx.cleanup();
    process.env.PATH = saved.PATH;
    if (saved.FAKE_MMCLI_STATE === undefined) delete process.env.FAKE_MMCLI_STATE;
    else process.env.FAKE_MMCLI_STATE = saved.FAKE_MMCLI_STATE;
  });

  it('a modem that attaches late is brought to a connected bearer', async () => {
    setState({ state: 'registered', bearer: null, attachAt: Date.now() + 2500 });
    const searching = waitModem('searching');
    const connected = waitModem('connected', 20_000);
    await cap.start(ctx);
    await searching;
    await connected;
    const d = reported(cap).details as { operator: string; signal: { rsrp: number } };
    assert.equal(d.operator, 'vodafone UK');
    // The extended signal needs --signal-setup first; the fake only reports figures after it.
    await cap.pollNow();
    assert.equal((reported(cap).details as { signal: { rsrp: number } }).signal.rsrp, -97);
  });

  it('a dropped bearer is reconnected (registered is not connected)', async () => {
    setState({ state: 'connected', bearer: { connected: false }, signalRate: 1 });
    await waitModem('registered');
    await waitModem('connected');
  });

  it('a modem that vanishes is reported absent, then recovered', async () => {
    setState({ present: false });
    await waitModem('absent');
    assert.equal(reported(cap).status, 'degraded');
    setState({ state: 'registered', bearer: null, signalRate: 1 });
    await waitModem('connected');
  });
});
