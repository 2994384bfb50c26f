import { AppError } from '../../common/errors.js';
import type { WifiAdapter, WifiLink } from '../../agent/src/platform/wifi.js';

/** Test double with the same behaviour: joins only a visible SSID with the right passphrase. */
export class FakeWifi implements WifiAdapter {
  readonly networks = new Map<string, { passphrase: string; rssi: number }>();
  link: WifiLink | null = null;
  connects: string[] = [];
  failStatus = false;

  async current(): Promise<WifiLink | null> {
    if (this.failStatus) throw new AppError('COMMAND_FAILED', 'wifi status: nmcli: not installed or not on PATH');
    if (this.link) {
      const n = this.networks.get(this.link.ssid);
      if (!n)
        this.link = null; // the access point went away
      else this.link = { ...this.link, rssi: n.rssi };
    }
    return this.link ? { ...this.link } : null;
  }

  async connect(ssid: string, passphrase: string): Promise<void> {
    this.connects.push(ssid);
    const n = this.networks.get(ssid);
    if (!n) throw new AppError('COMMAND_FAILED', `wifi join "${ssid}": No network with SSID '${ssid}' found.`);
    if (n.passphrase !== passphrase) throw new AppError('COMMAND_FAILED', `wifi join "${ssid}": Secrets were required, but not provided.`);
    this.link = { ssid, rssi: n.rssi, iface: 'wlan0' };
  }
}
