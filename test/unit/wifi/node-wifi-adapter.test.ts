import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isAppError } from '../../../common/errors.js';
import { NodeWifiAdapter, type WifiAdapter } from '../../../agent/src/platform/wifi.js';
import { FakeWifi } from '../../helpers/fake-wifi.js';

/**
 * One contract for both adapters: the real one drives node-wifi against a stand-in `nmcli` that
 * speaks NetworkManager's terse output (`nmcli --terse --fields active,ssid,... device wifi list`).
 */
const PASS = 'right-passphrase-42';
let dir = '';
let savedPath = '';

function fakeNmcli(d: string): void {
  const joined = join(d, 'joined');
  const script = `#!/bin/sh
case "$*" in
  *"device wifi connect"*)
    case "$*" in *"password ${PASS}"*) touch ${joined}; echo "Device 'wlan0' successfully activated with 'x'."; exit 0;; esac
    echo "Error: Connection activation failed: (7) Secrets were required, but not provided."; exit 4;;
  *"--terse"*)
    [ -f ${joined} ] && echo 'yes:Surgery-Backup:AA\\:BB\\:CC\\:DD\\:EE\\:FF:Infra:6:2437 MHz:70:WPA2:(none):pair_ccmp group_ccmp psk:wlan0'
    echo 'no:Other:11\\:22\\:33\\:44\\:55\\:66:Infra:11:2462 MHz:40:WPA2:(none):pair_ccmp group_ccmp psk:wlan0'
    exit 0;;
esac
exit 1
`;
  writeFileSync(join(d, 'nmcli'), script);
  chmodSync(join(d, 'nmcli'), 0o755);
}

const adapters: Array<[string, () => WifiAdapter]> = [
  [
    'FakeWifi',
    () => {
      const f = new FakeWifi();
      f.networks.set('Surgery-Backup', { passphrase: PASS, rssi: -65 });
      return f;
    },
  ],
  ['NodeWifiAdapter (node-wifi + nmcli)', () => new NodeWifiAdapter('wlan0')],
];

describe('Wi-Fi adapter contract', () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'lb-nmcli-'));
    fakeNmcli(dir);
    savedPath = process.env.PATH ?? '';
    process.env.PATH = `${dir}:${savedPath}`;
  });
  after(() => {
    process.env.PATH = savedPath;
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [name, make] of adapters) {
    it(`${name}: not joined, wrong passphrase refused without leaking it, right one joins with RSSI`, async () => {
      rmSync(join(dir, 'joined'), { force: true });
      const a = make();
      assert.equal(await a.current(), null);
      await assert.rejects(
        a.connect('Surgery-Backup', 'wrong-secret-99'),
        (e) => isAppError(e, 'COMMAND_FAILED') && !String((e as Error).message).includes('wrong-secret-99'),
      );
      await a.connect('Surgery-Backup', PASS);
      const link = await a.current();
      assert.equal(link?.ssid, 'Surgery-Backup');
      assert.equal(typeof link?.rssi, 'number');
      assert.ok(link!.rssi! < -30 && link!.rssi! > -100, `RSSI in dBm: ${link?.rssi}`);
    });
  }
});
