import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isAppError } from '../../../common/errors.js';
import { ModemManager, parseBearer, parseModem, parseModemList, parseSignal } from '../../../agent/src/platform/modem-manager.js';
import { runFakeMmcli } from '../../helpers/fake-mmcli/render.mjs';
import { FakeRunner } from '../../helpers/fake-runner.js';

const fx = (name: string) => readFileSync(join(import.meta.dirname, '../../fixtures/mmcli', name), 'utf8');

describe('mmcli -J parsers (fixtures in the real format)', () => {
  it('lists modems', () => {
    assert.deepEqual(parseModemList(fx('list.json')), ['/org/freedesktop/ModemManager1/Modem/0']);
    assert.deepEqual(parseModemList(fx('list-empty.json')), []);
  });

  it('reads a connected LTE modem', () => {
    const m = parseModem(fx('modem-connected-lte.json'));
    assert.equal(m.state, 'connected');
    assert.equal(m.index, '0');
    assert.equal(m.operator, 'vodafone UK');
    assert.equal(m.operatorCode, '23415');
    assert.equal(m.accessTech, 'lte');
    assert.equal(m.quality, 67);
    assert.deepEqual(m.bearers, ['/org/freedesktop/ModemManager1/Bearer/1']);
    assert.equal(m.failedReason, null);
  });

  it('maps "--" to null and reads failed/searching/disabled modems', () => {
    const f = parseModem(fx('modem-failed-sim-missing.json'));
    assert.equal(f.state, 'failed');
    assert.equal(f.failedReason, 'sim-missing');
    assert.equal(f.operator, null);
    assert.equal(f.accessTech, null);
    assert.equal(parseModem(fx('modem-searching.json')).state, 'searching');
    assert.equal(parseModem(fx('modem-disabled.json')).state, 'disabled');
    assert.equal(parseModem(fx('modem-registered.json')).bearers.length, 0);
  });

  it('reads LTE signal figures, including comma-decimal locales', () => {
    assert.deepEqual(parseSignal(fx('signal-lte.json')), { rsrp: -97, rsrq: -11, sinr: 9.4, rssi: -68, refreshRate: 30 });
    const c = parseSignal(fx('signal-comma-locale.json'));
    assert.equal(c.rsrp, -104);
    assert.equal(c.sinr, 2);
    const none = parseSignal(fx('signal-not-setup.json'));
    assert.deepEqual([none.rsrp, none.rsrq, none.sinr, none.refreshRate], [null, null, null, 0]);
  });

  it('reads bearer state and interface', () => {
    const up = parseBearer(fx('bearer-connected.json'));
    assert.deepEqual([up.connected, up.interface, up.address, up.error], [true, 'wwan0', '10.64.23.17', null]);
    const down = parseBearer(fx('bearer-disconnected.json'));
    assert.deepEqual([down.connected, down.interface, down.address], [false, null, null]);
    assert.equal(down.error, 'Network failure');
  });

  it('refuses garbage with UPSTREAM_ERROR instead of crashing', () => {
    for (const bad of ['', 'not json', '[]', '{"modem":{}}', '** (mmcli): WARNING']) {
      assert.throws(
        () => parseModem(bad),
        (e) => isAppError(e, 'UPSTREAM_ERROR'),
      );
    }
    assert.throws(
      () => parseModemList('{}'),
      (e) => isAppError(e, 'UPSTREAM_ERROR'),
    );
    assert.throws(
      () => parseSignal('{"modem":{}}'),
      (e) => isAppError(e, 'UPSTREAM_ERROR'),
    );
    assert.throws(
      () => parseBearer('{"bearer":{}}'),
      (e) => isAppError(e, 'UPSTREAM_ERROR'),
    );
  });
});

describe('ModemManager adapter', () => {
  it('passes the real mmcli arguments and classifies errors', async () => {
    const runner = new FakeRunner().on('mmcli', (args) => {
      if (args.includes('-L')) return { stdout: fx('list.json') };
      if (args.includes('--signal-get')) return { stdout: fx('signal-lte.json') };
      if (args[1] === '-m' && args[2] === '7') return { code: 1, stderr: "error: couldn't find modem at '/org/freedesktop/ModemManager1/Modem/7'\n" };
      return { stdout: fx('modem-connected-lte.json') };
    });
    const mm = new ModemManager(runner);
    assert.deepEqual(await mm.list(), ['/org/freedesktop/ModemManager1/Modem/0']);
    assert.equal((await mm.signal('0')).rsrp, -97);
    await assert.rejects(mm.modem('7'), (e) => isAppError(e, 'NOT_FOUND'));
    assert.deepEqual(
      runner.callsTo('mmcli').map((c) => c.args.join(' ')),
      ['-J -L', '-J -m 0 --signal-get', '-J -m 7'],
    );
  });

  it('reports a missing mmcli and a missing ModemManager daemon distinctly', async () => {
    await assert.rejects(new ModemManager(new FakeRunner()).list(), (e) => isAppError(e, 'COMMAND_FAILED') && /not installed/.test(e.message));
    const noDaemon = new FakeRunner().on('mmcli', () => ({ code: 1, stderr: "error: couldn't find the ModemManager process in the bus\n" }));
    await assert.rejects(new ModemManager(noDaemon).list(), (e) => isAppError(e, 'UNAVAILABLE'));
  });

  it('rejects an APN that could smuggle mmcli options', async () => {
    const runner = new FakeRunner().on('mmcli', () => ({ stdout: '' }));
    await assert.rejects(new ModemManager(runner).simpleConnect('0', 'x,user=evil'), (e) => isAppError(e, 'CONFIG_INVALID'));
    await new ModemManager(runner).simpleConnect('0', 'internet');
    assert.deepEqual(runner.calls.at(-1)?.args, ['-m', '0', '--simple-connect=apn=internet']);
  });
});

/** The same shape check against the fixtures and the fake, so the lab's fake mmcli cannot drift. */
function keyPaths(v: unknown, prefix = ''): string[] {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return [prefix];
  return Object.entries(v as Record<string, unknown>)
    .flatMap(([k, x]) => keyPaths(x, prefix ? `${prefix}.${k}` : k))
    .sort();
}

describe('fake mmcli matches the real shapes', () => {
  const cases: Array<[string, string[], string]> = [
    ['modem', ['-m', '0'], 'modem-connected-lte.json'],
    ['signal', ['-m', '0', '--signal-get'], 'signal-lte.json'],
    ['bearer', ['-b', '/org/freedesktop/ModemManager1/Bearer/1'], 'bearer-connected.json'],
    ['list', ['-L'], 'list.json'],
  ];
  for (const [what, argv, fixture] of cases) {
    it(`${what}: same key paths as ${fixture}`, () => {
      const r = runFakeMmcli(argv, {});
      assert.equal(r.code, 0);
      const fake = keyPaths(JSON.parse(r.stdout));
      const real = keyPaths(JSON.parse(fx(fixture)));
      // The fake may omit a field only if the parsers never read it; they read every path listed here.
      assert.deepEqual(fake, real);
    });
  }

  it('parses the fake through the adapter parsers identically in meaning', () => {
    const st = { signalRate: 30 };
    assert.equal(parseModem(runFakeMmcli(['-m', '0'], st).stdout).state, 'connected');
    assert.equal(parseSignal(runFakeMmcli(['-m', '0', '--signal-get'], st).stdout).rsrp, -97);
    assert.equal(parseModem(runFakeMmcli(['-m', '0'], { attachAt: Date.now() + 60_000 }).stdout).state, 'searching');
    assert.equal(parseModem(runFakeMmcli(['-m', '0'], { bearer: { connected: false } }).stdout).state, 'registered');
    assert.equal(runFakeMmcli(['-m', '0'], { present: false }).code, 1);
  });
});
