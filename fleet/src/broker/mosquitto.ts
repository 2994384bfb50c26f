import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { crlPathFor, revokedCertificates, writeCrl } from './crl.js';
import { dynsecConfig } from './dynsec.js';

/**
 * The one way this repo runs Debian's mosquitto the way the contract's broker runs
 * (docs/mqtt-contract.md "Broker ACL and provisioning"): TLS with client certificates, the
 * certificate subject as the user name, the dynamic-security plugin confining each device to its
 * own topics (and refusing every other SUBSCRIBE, `$share/...` included: dynsec.ts says why not an
 * acl_file), persistence. Used by the fleet's
 * embedded broker (`make fleet`) and by the tests' TestBroker (test/helpers/mosquitto.ts).
 */
export const MOSQUITTO = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'].find((p) => existsSync(p));

/** A free loopback port (the OS picks; closed again at once). */
export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

export const DYNSEC_PLUGIN = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib/mosquitto', '/usr/lib']
  .map((d) => join(d, 'mosquitto_dynamic_security.so'))
  .find((p) => existsSync(p));

/**
 * Writes `<dir>/dynamic-security.json` (the fleet and `devices`) and `<dir>/mosquitto.conf`;
 * returns the conf path. `pki` is a provisioning/pki.sh tree. The plugin rewrites its JSON file when
 * devices are registered at run time (DeviceRegistrar), so this is called before each start with
 * every enrolled device.
 */
export function writeBrokerConfig(dir: string, o: { pki: string; port: number; prefix: string; devices: string[] }): string {
  if (!DYNSEC_PLUGIN) throw new Error('mosquitto_dynamic_security.so not found (Debian package mosquitto 2.0)');
  const dynsec = join(dir, 'dynamic-security.json');
  writeFileSync(dynsec, JSON.stringify(dynsecConfig(o.prefix, o.devices), null, 1), { mode: 0o600 });
  // The CRL of replaced boxes (broker/replacements.ts), made fresh from the revoked markers when the CA key is here.
  const devicesDir = join(o.pki, 'devices');
  const crl = crlPathFor(devicesDir);
  if (existsSync(join(o.pki, 'ca.key'))) {
    writeCrl({ caCert: join(o.pki, 'ca.crt'), caKey: join(o.pki, 'ca.key'), revoked: revokedCertificates(devicesDir), out: crl });
  }
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      // As root mosquitto would drop to the mosquitto user, which cannot read a temp dir's files.
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      'per_listener_settings false',
      'allow_anonymous false',
      `listener ${o.port} 127.0.0.1`,
      `cafile ${o.pki}/ca.crt`,
      `certfile ${o.pki}/server.crt`,
      `keyfile ${o.pki}/server.key`,
      'require_certificate true',
      ...(existsSync(crl) ? [`crlfile ${crl}`] : []),
      // The whole subject, not just the CN: a device certificate (subject CN=<id> only) can never
      // carry the fleet's user name "CN=fleet,OU=fleet-manager,O=surgery-edge".
      'use_subject_as_username true',
      `plugin ${DYNSEC_PLUGIN}`,
      `plugin_opt_config_file ${dynsec}`,
      'persistence true',
      `persistence_location ${dir}/`,
      'max_queued_messages 100000',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      '',
    ].join('\n'),
  );
  return conf;
}

/** Starts mosquitto on `conf`; resolves once its listener is open. `onLog` sees every stderr chunk. */
export async function spawnMosquitto(conf: string, onLog: (chunk: string) => void = () => {}): Promise<ChildProcess> {
  if (!MOSQUITTO) throw new Error('mosquitto is not installed (apt-get install mosquitto)');
  const proc = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  await new Promise<void>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`mosquitto did not start:\n${log.slice(-2000)}`)), 10_000);
    proc.stderr!.on('data', (b: Buffer) => {
      log = (log + b.toString()).slice(-5000);
      onLog(b.toString());
      if (/Opening ipv4 listen socket on port/.test(log)) {
        clearTimeout(timer);
        res();
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`mosquitto exited ${code}:\n${log.slice(-2000)}`));
    });
  });
  return proc;
}

/** Re-read the config, the CRL and the dynamic-security file (SIGHUP). */
export function reloadMosquitto(p: ChildProcess | undefined): void {
  if (p && p.exitCode === null) p.kill('SIGHUP');
}

/** SIGTERM and wait for the exit. */
export async function stopMosquitto(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null) return;
  await new Promise<void>((r) => {
    p.once('exit', () => r());
    p.kill('SIGTERM');
  });
}
