import { Type } from '@sinclair/typebox';
import { Ms, Obj } from '../config/types.js';

export const WifiSection = Obj({
  enabled: Type.Boolean({ default: false }),
  uplink: Type.String({ default: 'wifi', description: 'Name of the Wi-Fi uplink in `uplinks`' }),
  interface: Type.Optional(Type.String({ maxLength: 15, description: "Wi-Fi interface (default: the uplink's, else wlan0)" })),
  ssid: Type.String({ default: '' }),
  passphraseFile: Type.Optional(Type.String({ description: 'File holding the WPA passphrase (mode 0600); never logged' })),
  pollIntervalMs: Ms(15_000, 'How often the association and RSSI are checked', 1000),
  reconnect: Obj({
    initialMs: Ms(5_000, 'First rejoin delay after the link drops', 100),
    maxMs: Ms(300_000, 'Rejoin backoff cap', 1000),
  }),
});
