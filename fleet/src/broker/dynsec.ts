import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';

/**
 * Mosquitto 2.0's acl_file never refuses a SUBSCRIBE: it grants any filter and only filters what
 * it delivers. For a shared subscription that is fatal: a device that joins `$share/fleet/...` is
 * handed a share of every device's messages, which the ACL then drops (issue 17). The
 * dynamic-security plugin (shipped in Debian's mosquitto package) does check SUBSCRIBE, so the
 * broker runs it instead of an acl_file: one role per device confining it to `<prefix>/<id>/#`
 * (the plugin has no %u patterns), one for the fleet, and everything else denied.
 *
 * User names are certificate subjects (use_subject_as_username): `CN=<id>` for a device,
 * FLEET_USERNAME for the fleet. provisioning/pki.sh issues device certificates with the subject
 * CN=<id> alone, so a device certificate can never carry the fleet's user name, even for CN=fleet.
 */
export const FLEET_USERNAME = 'CN=fleet,OU=fleet-manager,O=surgery-edge';
export const deviceUsername = (id: string): string => `CN=${id}`;
export const CONTROL_TOPIC = '$CONTROL/dynamic-security/v1';
const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

type AclType = 'publishClientSend' | 'publishClientReceive' | 'subscribePattern' | 'unsubscribePattern';
const acl = (acltype: AclType, topic: string) => ({ acltype, topic, priority: 0, allow: true });

export function deviceRole(prefix: string, id: string) {
  const t = `${prefix}/${id}/#`;
  return {
    rolename: `device:${id}`,
    acls: [acl('publishClientSend', t), acl('publishClientReceive', t), acl('subscribePattern', t), acl('unsubscribePattern', t)],
  };
}

/** The fleet reads and writes every device's topics, joins shared groups on them, and registers devices. */
export function fleetRole(prefix: string) {
  return {
    rolename: 'fleet',
    acls: [
      acl('publishClientSend', `${prefix}/#`),
      acl('publishClientReceive', `${prefix}/#`),
      acl('subscribePattern', `${prefix}/#`),
      acl('subscribePattern', `$share/+/${prefix}/#`),
      acl('unsubscribePattern', '#'),
      acl('publishClientSend', '$CONTROL/dynamic-security/#'),
      acl('publishClientReceive', '$CONTROL/dynamic-security/#'),
      acl('subscribePattern', '$CONTROL/dynamic-security/#'),
    ],
  };
}

/** The plugin's JSON file: the fleet plus `devices`; defaults deny (unknown user names are denied anyway). */
export function dynsecConfig(prefix: string, devices: string[]): unknown {
  return {
    defaultACLAccess: { publishClientSend: false, publishClientReceive: false, subscribe: false, unsubscribe: true },
    clients: [
      { username: FLEET_USERNAME, roles: [{ rolename: 'fleet' }] },
      ...devices.map((id) => ({ username: deviceUsername(id), roles: [{ rolename: `device:${id}` }] })),
    ],
    groups: [],
    roles: [fleetRole(prefix), ...devices.map((id) => deviceRole(prefix, id))],
  };
}

/**
 * Device ids with a certificate in a provisioning/pki.sh tree (DIR/devices/<id>.crt), less those
 * revoked (DIR/devices/<id>.revoked: a box replaced by another, broker/replacements.ts).
 */
export function enrolledDevices(pki: string): string[] {
  const dir = join(pki, 'devices');
  if (!existsSync(dir)) return [];
  const files = readdirSync(dir);
  const revoked = new Set(files.filter((f) => f.endsWith('.revoked')).map((f) => f.slice(0, -8)));
  return files
    .filter((f) => f.endsWith('.crt'))
    .map((f) => f.slice(0, -4))
    .filter((id) => DEVICE_ID.test(id) && id.toLowerCase() !== 'fleet' && !revoked.has(id));
}

/** The plugin commands that register one device (idempotent: "already exists" answers are fine). */
export function registerCommands(prefix: string, id: string): unknown {
  const role = deviceRole(prefix, id);
  return {
    commands: [
      { command: 'createRole', ...role },
      { command: 'createClient', username: deviceUsername(id), roles: [{ rolename: role.rolename }] },
    ],
  };
}

/**
 * Keeps the broker's device list in step with a pki tree at run time: devices enrolled while the
 * broker runs (`pki.sh device` / `sign-csr`) are registered through the plugin's control topic with
 * the fleet identity, polled every `everyMs`. The embedded broker and the tests' broker use it; an
 * ICB's own broker registers devices with mosquitto_ctrl (docs/fleet.md).
 */
export class DeviceRegistrar {
  private client: MqttClient | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly known = new Set<string>();

  constructor(
    private readonly o: { url: string; pki: string; prefix: string; ca: string; cert: string; key: string; everyMs: number; onError?: (msg: string) => void },
  ) {}

  async start(alreadyRegistered: string[]): Promise<void> {
    for (const id of alreadyRegistered) this.known.add(id);
    const c = mqtt.connect(this.o.url, {
      protocolVersion: 5,
      clientId: `fleet-registrar-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
      ca: readFileSync(this.o.ca),
      cert: readFileSync(this.o.cert),
      key: readFileSync(this.o.key),
      reconnectPeriod: 1000,
      connectTimeout: 5000,
    });
    c.on('error', (e) => this.o.onError?.(e.message));
    this.client = c;
    await new Promise<void>((res) => {
      const t = setTimeout(res, 5000);
      c.once('connect', () => (clearTimeout(t), res()));
    });
    await this.sync();
    this.timer = setInterval(() => void this.sync().catch((e: Error) => this.o.onError?.(e.message)), this.o.everyMs);
    this.timer.unref();
  }

  /** Register every enrolled device not yet known; resolves when the broker has the commands. */
  async sync(): Promise<string[]> {
    const c = this.client;
    if (!c?.connected) return [];
    const fresh = enrolledDevices(this.o.pki).filter((id) => !this.known.has(id));
    for (const id of fresh) {
      await c.publishAsync(CONTROL_TOPIC, JSON.stringify(registerCommands(this.o.prefix, id)), { qos: 1 });
      this.known.add(id);
    }
    return fresh;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    const c = this.client;
    this.client = undefined;
    if (c) await c.endAsync(true);
  }
}
