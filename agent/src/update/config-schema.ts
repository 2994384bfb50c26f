import { Type } from '@sinclair/typebox';
import { Bool, Ms, Obj, Str } from '../config/types.js';

/** `update:` section (docs/updates.md). The defaults are the appliance image's layout. */
export const UpdateSection = Obj({
  enabled: Bool(true, 'Accept `update` commands from the fleet (bundles are always signature-checked)'),
  bootControl: Type.Union([Type.Literal('auto'), Type.Literal('grub'), Type.Literal('none')], {
    default: 'auto',
    description: 'auto: GRUB A/B when the kernel command line names a slot (the appliance image), else none (the .deb: update with apt)',
  }),
  keysDir: Str('/usr/share/surgery-edge/update-keys', 'Trusted ICB update public keys (*.pem, Ed25519); on the read-only root in the image'),
  grubenvPath: Str('/boot/ab/grubenv', 'GRUB environment block on the ext4 boot partition (image/grub/grub.cfg reads it)'),
  slotA: Str('/dev/disk/by-partlabel/se-root-a', 'Root slot A partition'),
  slotB: Str('/dev/disk/by-partlabel/se-root-b', 'Root slot B partition'),
  caPath: Str('', 'PEM CA for https bundle URLs (empty: the telemetry CA, else the system CAs)'),
  maxBundleBytes: Type.Integer({ default: 2 * 1024 ** 3, minimum: 1024, description: 'Downloads larger than this are refused' }),
  downloadTimeoutMs: Ms(60_000, 'Abort a download that sends nothing for this long', 1000),
  rebootDelayMs: Ms(5_000, 'Between "installed" (reported) and the reboot into the new slot', 0),
  healthGate: Obj({
    timeoutMs: Ms(10 * 60_000, 'Roll back when the trial boot is not healthy within this long', 1000),
    stableMs: Ms(60_000, 'Every condition must hold this long before committing', 0),
    requireBroker: Bool(true, 'Also require the MQTT session to the fleet before committing'),
  }),
});
