import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ha1, kamailioConfig, type ResolvedPeers } from '../../../agent/src/telephony/kamailio-cfg.js';
import { validateConfig } from '../../../agent/src/config/load.js';
import { testConfig } from '../../helpers/ctx.js';

const KAMAILIO = spawnSync('kamailio', ['-v']).status === 0;
const full = {
  enabled: true,
  listen: '127.0.0.1',
  port: 25060,
  lanSubnets: ['127.0.0.0/8'],
  extensions: [
    { ext: '1001', password: 'secret-1001' },
    { ext: '1002', password: 'secret-1002' },
  ],
  pbx: { host: '192.0.2.10' },
  trunk: { host: '192.0.2.20' },
  emergency: { trunk: { host: '192.0.2.30', port: 5070 } },
  huntGroup: { ddis: ['01632960000'], members: ['1001', '1002'] },
};
const peersFull: ResolvedPeers = {
  pbx: { ip: '192.0.2.10', port: 5060 },
  trunk: { ip: '192.0.2.20', port: 5060, outboundPattern: '^0[1-9][0-9]{8,9}$' },
  emergency: { ip: '192.0.2.30', port: 5070 },
};

/** kamailio's own config check (`kamailio -c -f`): the generated file must load in kamailio 5.6. */
function check(cfg: string): { ok: boolean; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tp-cfg-'));
  try {
    writeFileSync(join(dir, 'k.cfg'), cfg.replaceAll('@DIR@', dir));
    writeFileSync(join(dir, 'd.list'), '1 sip:192.0.2.10:5060 0 0\n');
    const r = spawnSync('kamailio', ['-c', '-f', join(dir, 'k.cfg')], { encoding: 'utf8' });
    return { ok: r.status === 0, out: (r.stderr ?? '') + (r.stdout ?? '') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const paths = { ctlSocket: '@DIR@/ctl.sock', dispatcherList: '@DIR@/d.list' };

describe('telephony config section', () => {
  it('is off by default and old configs stay valid', () => {
    const c = testConfig({});
    assert.equal(c.telephony.enabled, false);
    assert.deepEqual(c.telephony.emergency.numbers, ['999', '112']);
  });
  it('rejects a weak password, a bad extension and a regex that would break out of the cfg string', () => {
    const r = validateConfig({ telephony: { extensions: [{ ext: 'x1', password: 'short' }], trunk: { host: '192.0.2.1', outboundPattern: '^0"; exit; #' } } });
    assert.equal(r.ok, false);
    if (r.ok) return;
    const paths = r.problems.map((p) => p.path);
    assert.ok(paths.includes('/telephony/extensions/0/ext'), JSON.stringify(paths));
    assert.ok(paths.includes('/telephony/extensions/0/password'));
    assert.ok(paths.includes('/telephony/trunk/outboundPattern'));
  });
});

describe('kamailio config generation', () => {
  it('stores HA1 digests, never the passwords', () => {
    const c = testConfig({ telephony: full }).telephony;
    const f = kamailioConfig(c, peersFull, paths);
    assert.ok(!f.cfg.includes('secret-1001'));
    assert.ok(f.cfg.includes(ha1('1001', 'surgery-edge', 'secret-1001')));
    assert.equal(ha1('1001', 'surgery-edge', 'secret-1001').length, 32);
  });
  it('routes 999/112 before any authentication or dial plan', () => {
    const c = testConfig({ telephony: full }).telephony;
    const cfg = kamailioConfig(c, peersFull, paths).cfg;
    const main = cfg.slice(cfg.indexOf('request_route {'), cfg.indexOf('route[MODE]'));
    assert.ok(main.indexOf('route(EMERGENCY)') > 0);
    assert.ok(main.indexOf('route(EMERGENCY)') < main.indexOf('route(REGISTER_LOCAL)'));
    assert.ok(main.indexOf('route(EMERGENCY)') < main.indexOf('route(LOCAL)'));
    assert.match(main, /\^\(999\|112\)\$/);
    assert.match(cfg, /\$du = "sip:192\.0\.2\.30:5070"/);
  });
  it('puts the PBX in the dispatcher list probed with OPTIONS', () => {
    const c = testConfig({ telephony: { ...full, probe: { intervalS: 3, failAfter: 4 } } }).telephony;
    const f = kamailioConfig(c, peersFull, paths);
    assert.equal(f.dispatcher, '1 sip:192.0.2.10:5060 0 0\n');
    assert.match(f.cfg, /ds_ping_interval", 3\)/);
    assert.match(f.cfg, /ds_probing_threshold", 4\)/);
  });

  it('has one in-dialog path for every source (no per-source copies), classified once by route[SOURCE]', () => {
    const cfg = kamailioConfig(testConfig({ telephony: full }).telephony, peersFull, paths).cfg;
    assert.equal(cfg.match(/route\(WITHINDLG\)/g)?.length, 1);
    assert.equal(cfg.match(/has_totag\(\)\) \{/g)?.length, 1, 'one has_totag branch');
    assert.equal(cfg.match(/is_method\("CANCEL"\)/g)?.length, 1, 'one CANCEL path');
    const main = cfg.slice(cfg.indexOf('request_route {'), cfg.indexOf('route[MODE]'));
    assert.ok(main.indexOf('route(SOURCE)') < main.indexOf('route(WITHINDLG)'), 'the source is checked before any in-dialog relaying');
  });
  it('refuses oversized messages first and bans repeated wrong credentials (not 999)', () => {
    const cfg = kamailioConfig(testConfig({ telephony: { ...full, auth: { maxFailures: 4, banS: 120 } } }).telephony, peersFull, paths).cfg;
    const main = cfg.slice(cfg.indexOf('request_route {'), cfg.indexOf('route[MODE]'));
    assert.ok(main.indexOf('$ml > 8192') < main.indexOf('sanity_check'));
    assert.match(cfg, /authfail=>size=8;autoexpire=120;initval=0;/);
    assert.match(cfg, /\$sht\(authfail=>\$si\) >= 4/);
    assert.ok(main.indexOf('route(EMERGENCY)') < main.indexOf('route(REGISTER_LOCAL)'));
    const emergency = cfg.slice(cfg.indexOf('route[EMERGENCY] {'), cfg.indexOf('route[EMERGENCY_TRUNK] {'));
    assert.doesNotMatch(emergency, /authfail|AUTH_/);
  });

  const shapes: [string, Record<string, unknown>, ResolvedPeers][] = [
    ['everything configured', full, peersFull],
    ['no PBX, no trunks, no extensions', { enabled: true, listen: '127.0.0.1' }, { pbx: null, trunk: null, emergency: null }],
    ['PBX only (999 via the PBX)', { enabled: true, listen: '127.0.0.1', pbx: { host: '192.0.2.10' } }, { pbx: peersFull.pbx, trunk: null, emergency: null }],
    [
      'trunk carries 999, one hunt member',
      { ...full, emergency: {}, huntGroup: { ddis: ['01632960000'], members: ['1001'] } },
      { ...peersFull, emergency: null },
    ],
  ];
  for (const [name, doc, peers] of shapes) {
    it(`passes kamailio -c: ${name}`, { skip: KAMAILIO ? false : 'kamailio not installed (Debian package kamailio)' }, () => {
      const c = testConfig({ telephony: doc }).telephony;
      const r = check(kamailioConfig(c, peers, paths).cfg);
      assert.ok(
        r.ok,
        r.out
          .split('\n')
          .filter((l) => /ERROR|CRITICAL/.test(l))
          .join('\n'),
      );
    });
  }
  it('kamailio -c fails on a broken config (the check can fail)', { skip: KAMAILIO ? false : 'kamailio not installed' }, () => {
    const c = testConfig({ telephony: full }).telephony;
    assert.equal(check(kamailioConfig(c, peersFull, paths).cfg.replace('route[MODE] {', 'route[MODE] { nosuchfunction();')).ok, false);
  });
});
