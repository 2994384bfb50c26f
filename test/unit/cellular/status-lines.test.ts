import assert from 'node:assert/strict';
import { reported } from '../../helpers/reports.js';
import { it } from 'node:test';
import { CellularCapability } from '../../../agent/src/cellular/cellular.js';
import { formatStatus } from '../../../agent/src/cli/status.js';
import { createTestCtx } from '../../helpers/ctx.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { runFakeMmcli } from '../../helpers/fake-mmcli/render.mjs';
import { FakeRunner } from '../../helpers/fake-runner.js';

it('`surgery-edge status` prints the modem, signal, usage and policy lines', async () => {
  const clock = new FakeClock();
  let state: Record<string, unknown> = {};
  const runner = new FakeRunner().on('mmcli', (args) => {
    const r = runFakeMmcli(
      args.filter((a) => a !== '-J'),
      state,
      clock.now(),
    );
    state = r.state;
    return r;
  });
  const ctx = createTestCtx({ clock, commands: runner });
  const cap = new CellularCapability();
  try {
    await cap.start(ctx);
    await clock.advance(1);
    const text = formatStatus(
      { agent: { version: 't', bootId: 'b', pid: 1, deviceId: 'd', at: clock.now() }, capabilities: { cellular: reported(cap) } },
      clock.now(),
    );
    assert.match(text, /\[OK {2}\] cellular {3}4G standby ready on vodafone UK/);
    assert.match(text, /\n {7}modem: connected on vodafone UK \(lte\), bearer wwan0 10\.64\.23\.17\n/);
    assert.match(text, /\n {7}signal: RSRP -97 dBm, RSRQ -11 dB, SINR 9\.4 dB, quality 67%\n/);
    assert.match(text, /\n {7}usage: 0 B of 50\.00 GB \(0%\) since 2026-11-01\n/);
    assert.match(text, /\n {7}4G policy: NOT applied \(no cellular uplink configured\)\n/);
  } finally {
    await cap.stop();
    ctx.cleanup();
  }
});
