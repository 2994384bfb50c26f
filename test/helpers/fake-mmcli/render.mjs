// Renders ModemManager's `mmcli -J` output shapes (mmcli 1.20+, cli/mmcli-output.c upstream) from a
// small state document, so the lab and tests drive a "modem" without hardware. Run as the `mmcli`
// executable next to this file (it sets argv); tests may import `runFakeMmcli` directly.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const MODEM = '/org/freedesktop/ModemManager1/Modem/';
const BEARER = '/org/freedesktop/ModemManager1/Bearer/';

/** Defaults: a connected LTE modem with its bearer up on wwan0. */
export const defaultState = () => ({
  daemon: true, // false: ModemManager is not running
  present: true, // false: no modem (unplugged, crashed, USB reset)
  garbage: false, // true: print output that is not JSON
  index: 0,
  state: 'connected', // any ModemManager state; 'connected' also needs bearer.connected
  failedReason: null, // e.g. 'sim-missing' with state 'failed'
  attachAt: null, // epoch ms: before it, a registered/connected modem reports 'searching'
  afterEnable: 'registered', // state after `mmcli -m N -e`
  operator: 'vodafone UK',
  operatorCode: '23415',
  accessTech: ['lte'],
  quality: 67,
  signal: { rsrp: -97, rsrq: -11, snr: 9.4, rssi: -68 }, // null: no figures
  signalRate: 0, // set by --signal-setup=N
  connectFails: 0, // the next N --simple-connect calls fail
  netInterface: 'wwan0',
  bearer: { connected: true, address: '10.64.23.17', gateway: '10.64.23.18' }, // null: no bearer object
});

const s = (v) => (v === null || v === undefined || v === '' ? '--' : String(v));
const fmt = (n) => (n === null || n === undefined ? '--' : Number(n).toFixed(2));

function effectiveState(st, now) {
  if (st.attachAt && now < st.attachAt && ['registered', 'connecting', 'connected'].includes(st.state)) return 'searching';
  if (st.state === 'connected' && !(st.bearer && st.bearer.connected)) return 'registered';
  return st.state;
}

function modemDoc(st, now) {
  const state = effectiveState(st, now);
  const reg = ['registered', 'connecting', 'connected', 'disconnecting'].includes(state);
  const failed = state === 'failed';
  return {
    modem: {
      '3gpp': {
        '5gnr': { 'registration-settings': { 'drx-cycle': '--', 'mico-mode': '--' } },
        'enabled-locks': [],
        eps: { 'initial-bearer': { 'dbus-path': '--', settings: { apn: '--', 'ip-type': '--', password: '--', user: '--' } }, 'ue-mode-operation': '--' },
        imei: '867929060000000',
        'operator-code': reg ? s(st.operatorCode) : '--',
        'operator-name': reg ? s(st.operator) : '--',
        'packet-service-state': reg ? 'attached' : '--',
        pco: '--',
        'registration-state': reg ? 'home' : state === 'searching' ? 'searching' : '--',
      },
      cdma: { 'activation-state': '--', 'cdma1x-registration-state': '--', esn: '--', 'evdo-registration-state': '--', meid: '--', nid: '--', sid: '--' },
      'dbus-path': MODEM + st.index,
      generic: {
        'access-technologies': reg ? st.accessTech : [],
        bearers: st.bearer ? [BEARER + '1'] : [],
        'carrier-configuration': '--',
        'carrier-configuration-revision': '--',
        'current-bands': [],
        'current-capabilities': ['gsm-umts, lte'],
        'current-modes': 'allowed: 2g, 3g, 4g; preferred: 4g',
        device: '/sys/devices/platform/fake-modem',
        'device-identifier': 'fake0000000000000000000000000000000000000',
        drivers: ['option', 'qmi_wwan'],
        'equipment-identifier': '867929060000000',
        'hardware-revision': '--',
        manufacturer: 'QUALCOMM INCORPORATED',
        model: 'QUECTEL Mobile Broadband Module',
        'own-numbers': [],
        plugin: 'quectel',
        ports: ['cdc-wdm0 (qmi)', 'ttyUSB2 (at)', `${st.netInterface} (net)`],
        'power-state': 'on',
        'primary-port': 'cdc-wdm0',
        'primary-sim-slot': '--',
        revision: 'EC25EUGAR06A05M4G',
        'signal-quality': { recent: reg ? 'yes' : 'no', value: String(reg ? (st.quality ?? 0) : 0) },
        sim: failed && st.failedReason === 'sim-missing' ? '--' : '/org/freedesktop/ModemManager1/SIM/0',
        'sim-slots': [],
        state,
        'state-failed-reason': failed ? s(st.failedReason) : '--',
        'supported-bands': [],
        'supported-capabilities': ['gsm-umts, lte'],
        'supported-ip-families': ['ipv4', 'ipv6', 'ipv4v6'],
        'supported-modes': ['allowed: 2g, 3g, 4g; preferred: 4g'],
        'unlock-required': '--',
        'unlock-retries': ['sim-pin (3)', 'sim-puk (10)'],
      },
    },
  };
}

function signalDoc(st, now) {
  const reg = ['registered', 'connecting', 'connected', 'disconnecting'].includes(effectiveState(st, now));
  const g = reg && st.signalRate > 0 && st.signal ? st.signal : {};
  return {
    modem: {
      signal: {
        '5g': { 'error-rate': '--', rsrp: '--', rsrq: '--', snr: '--' },
        cdma1x: { ecio: '--', 'error-rate': '--', rssi: '--' },
        evdo: { ecio: '--', 'error-rate': '--', io: '--', rssi: '--', sinr: '--' },
        gsm: { 'error-rate': '--', rssi: '--' },
        lte: { 'error-rate': '--', rsrp: fmt(g.rsrp), rsrq: fmt(g.rsrq), rssi: fmt(g.rssi), snr: fmt(g.snr) },
        refresh: { rate: String(st.signalRate ?? 0) },
        threshold: { 'error-rate': 'no', rssi: '0' },
        umts: { ecio: '--', 'error-rate': '--', rscp: '--', rssi: '--' },
      },
    },
  };
}

function bearerDoc(st, now) {
  const b = st.bearer ?? {};
  const up = Boolean(b.connected) && effectiveState(st, now) === 'connected';
  const none = { address: '--', dns: [], gateway: '--', method: '--', mtu: '--', prefix: '--' };
  return {
    bearer: {
      'dbus-path': BEARER + '1',
      'ipv4-config': up ? { address: s(b.address), dns: ['10.206.64.1'], gateway: s(b.gateway), method: 'static', mtu: '1500', prefix: '30' } : none,
      'ipv6-config': none,
      properties: { 'allowed-auth': [], apn: 'internet', 'apn-type': 'default', 'ip-type': 'ipv4', password: '--', roaming: 'allowed', 'rm-protocol': '--', user: '--' },
      stats: { attempts: '1', 'bytes-rx': '--', 'bytes-tx': '--', 'downlink-speed': '--', duration: '--', 'failed-attempts': '0', 'start-date': '--', 'total-bytes-rx': '--', 'total-bytes-tx': '--', 'total-duration': '--', 'uplink-speed': '--' },
      status: {
        connected: up ? 'yes' : 'no',
        'connection-error': up ? { message: '--', name: '--' } : { message: 'Network failure', name: 'org.freedesktop.ModemManager1.Error.MobileEquipment.NetworkFailure' },
        interface: up ? s(st.netInterface) : '--',
        'ip-timeout': up ? '20' : '--',
        multiplexed: 'no',
        'profile-id': '--',
        suspended: 'no',
      },
      type: 'default',
    },
  };
}

/** Pure core: argv + state -> {code, stdout, stderr, state (possibly changed)}. */
export function runFakeMmcli(argv, state, now = Date.now()) {
  const st = { ...defaultState(), ...state };
  const out = (doc) => ({ code: 0, stdout: JSON.stringify(doc) + '\n', stderr: '', state: st });
  const fail = (msg) => ({ code: 1, stdout: '', stderr: `error: ${msg}\n`, state: st });
  const ok = (msg) => ({ code: 0, stdout: msg + '\n', stderr: '', state: st });
  if (!st.daemon) return fail("couldn't find the ModemManager process in the bus");
  const has = (f) => argv.includes(f);
  const val = (...flags) => {
    for (let i = 0; i < argv.length; i++) {
      for (const f of flags) {
        if (argv[i] === f) return argv[i + 1];
        if (argv[i].startsWith(f + '=')) return argv[i].slice(f.length + 1);
      }
    }
    return undefined;
  };
  if (st.garbage) return ok('** (mmcli:1234): WARNING **: unexpected reply');
  if (has('-L') || has('--list-modems')) return out({ 'modem-list': st.present ? [MODEM + st.index] : [] });
  const m = val('-m', '--modem');
  const b = val('-b', '--bearer');
  if (b !== undefined) {
    const idx = b.split('/').pop();
    if (!st.present || !st.bearer || idx !== '1') return fail(`couldn't find bearer at '${BEARER}${idx}'`);
    return out(bearerDoc(st, now));
  }
  if (m === undefined) return fail('no actions specified');
  const mi = m.split('/').pop();
  if (!st.present || (mi !== 'any' && mi !== String(st.index))) return fail(`couldn't find modem at '${MODEM}${mi}'`);
  const setup = argv.find((a) => a.startsWith('--signal-setup'));
  if (setup) {
    st.signalRate = Number(setup.split('=')[1] ?? val('--signal-setup') ?? 0);
    return ok('successfully setup extended signal quality information polling');
  }
  if (has('--signal-get')) return out(signalDoc(st, now));
  if (has('-e') || has('--enable')) {
    if (st.state === 'disabled') st.state = st.afterEnable;
    return ok('successfully enabled the modem');
  }
  const sc = argv.find((a) => a.startsWith('--simple-connect'));
  if (sc) {
    const eff = effectiveState(st, now);
    if (!['registered', 'connected'].includes(eff) || st.connectFails > 0) {
      if (st.connectFails > 0) st.connectFails -= 1;
      return fail("couldn't connect the modem: 'GDBus.Error:org.freedesktop.ModemManager1.Error.MobileEquipment.NetworkFailure: Network failure'");
    }
    st.state = 'connected';
    st.bearer = { ...defaultState().bearer, ...(st.bearer ?? {}), connected: true };
    return ok('successfully connected the modem');
  }
  return out(modemDoc(st, now));
}

function main() {
  const file = process.env.FAKE_MMCLI_STATE;
  let state = {};
  if (file) {
    try {
      state = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      if (e.code !== 'ENOENT') {
        process.stderr.write(`fake mmcli: bad state file ${file}: ${e.message}\n`);
        process.exit(2);
      }
    }
  }
  const argv = process.argv.slice(2).filter((a) => a !== '-J' && a !== '--output-json');
  const before = JSON.stringify({ ...defaultState(), ...state });
  const r = runFakeMmcli(argv, state);
  if (file && JSON.stringify(r.state) !== before) {
    const tmp = `${file}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(r.state, null, 1));
    renameSync(tmp, file);
  }
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  process.exitCode = r.code;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
