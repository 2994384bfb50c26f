import { createRequire } from 'node:module';
import { AppError } from '../../../common/errors.js';

/** The Wi-Fi backup uplink's radio, behind a small interface so tests use FakeWifi (test/helpers/fake-wifi.ts). */
export interface WifiLink {
  ssid: string;
  /** dBm, as node-wifi derives it from NetworkManager's signal percentage. */
  rssi: number | null;
  iface: string | null;
}

export interface WifiAdapter {
  current(): Promise<WifiLink | null>;
  connect(ssid: string, passphrase: string): Promise<void>;
}

interface NodeWifi {
  init(o: { iface: string | null; debug?: boolean }): void;
  getCurrentConnections(): Promise<Array<{ ssid: string; signal_level?: number; iface?: string }>>;
  connect(ap: { ssid: string; password: string }): Promise<void>;
}

/** Never let the passphrase out in an error: node-wifi's execFile errors quote the full nmcli argv. */
function redact(e: unknown, secret: string): string {
  const msg = e instanceof Error ? e.message : String(e);
  const clean = secret ? msg.split(secret).join('***') : msg;
  return clean.replace(/password\s+\S+/g, 'password ***').slice(0, 200);
}

/**
 * node-wifi over NetworkManager (`nmcli`). node-wifi keeps its config in module state, so one
 * adapter per process; the appliance has one Wi-Fi radio. Known limit: node-wifi passes the
 * passphrase to nmcli as an argument (briefly visible in /proc to local root), see docs/cellular.md.
 */
export class NodeWifiAdapter implements WifiAdapter {
  private lib: NodeWifi | null = null;
  constructor(private readonly iface: string | null) {}

  private wifi(): NodeWifi {
    if (!this.lib) {
      const lib = createRequire(import.meta.url)('node-wifi') as NodeWifi;
      lib.init({ iface: this.iface });
      this.lib = lib;
    }
    return this.lib;
  }

  async current(): Promise<WifiLink | null> {
    try {
      const list = await this.wifi().getCurrentConnections();
      const c = list.find((x) => !this.iface || !x.iface || x.iface === this.iface);
      if (!c || !c.ssid) return null;
      return {
        ssid: c.ssid,
        rssi: typeof c.signal_level === 'number' && Number.isFinite(c.signal_level) ? c.signal_level : null,
        iface: c.iface ?? this.iface,
      };
    } catch (e) {
      throw new AppError('COMMAND_FAILED', `wifi status: ${redact(e, '')}`);
    }
  }

  async connect(ssid: string, passphrase: string): Promise<void> {
    try {
      await this.wifi().connect({ ssid, password: passphrase });
    } catch (e) {
      throw new AppError('COMMAND_FAILED', `wifi join "${ssid}": ${redact(e, passphrase)}`);
    }
  }
}
