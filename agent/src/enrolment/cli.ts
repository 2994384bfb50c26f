import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { DEFAULT_CONFIG_PATH, configPathFrom, parse } from '../core/cli-args.js';
import type { CliCommand } from '../core/cli-command.js';
import { formatProblems, loadConfig, validateConfig } from '../config/load.js';
import { parse as parseYaml } from 'yaml';
import { AppError } from '../../../common/errors.js';
import { writeFileAtomic } from '../core/fs.js';
import { ProcessRunner } from '../platform/command.js';
import { createDeviceKey, keyPem, loadDeviceKey } from '../platform/device-key.js';
import { checkIdentityAsync } from './identity.js';
import { csrFromKey } from './csr.js';

export const IDENTITY_DIR = '/etc/surgery-edge/mqtt';
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

const USAGE = `usage:
  surgery-edge enrol csr --device-id ID [--config FILE]      key on this box (kept), CSR to stdout and enrolment.csrPath
  surgery-edge enrol install PRACTICE.tar [--config FILE]    certificate + CA + practice config from provisioning/practice.sh
  surgery-edge enrol status [--config FILE]
`;

/**
 * Enrolment on the box itself (docs/image.md runbook): the private key is generated here and
 * never leaves; only the CSR (public) goes to the ICB CA, and the signed certificate comes back
 * inside the practice bundle with the CA and the practice's config.
 */
export const enrolCommand: CliCommand = {
  summary: 'enrol csr|install|status: device identity from the ICB CA (key generated on the box)',
  async run(args) {
    const [sub, ...rest] = args;
    const { values, positionals } = parse(rest, { config: { type: 'string', short: 'c' }, 'device-id': { type: 'string' } }, true);
    const path = configPathFrom(values.config);
    const config = loadConfig(path);
    const keyPath = config.telemetry.keyPath || join(IDENTITY_DIR, 'device.key');
    const root = config.paths.root;
    const host = (p: string) => (root === '/' ? p : join(root, p));

    if (sub === 'csr') {
      const id = values['device-id'] ?? config.site.deviceId;
      if (!ID_PATTERN.test(id)) throw new AppError('BAD_REQUEST', `bad device id ${JSON.stringify(id)}`);
      const key = host(keyPath);
      const e = config.enrolment;
      const keyOpts = { runner: new ProcessRunner(30_000), workDir: host(config.paths.runDir), tcti: e.tpmTcti, pcrs: e.tpmPcrs, hostPath: host };
      // EC P-256 like the rest of the PKI. Sealed to the TPM where present (device-key.ts); else 0600.
      const held = await createDeviceKey(key, e.keyProtection, keyOpts);
      const { key: priv } = await loadDeviceKey(key, keyOpts);
      // The key reaches openssl on a pipe, never as a file: a sealed key is never on disk in the clear.
      const csr = csrFromKey(keyPem(priv), id);
      writeFileAtomic(host(config.enrolment.csrPath), csr, 0o644);
      process.stdout.write(csr);
      process.stderr.write(
        `CSR for ${id} written to ${config.enrolment.csrPath}; the key stays on this box (${held === 'tpm' ? `sealed to its TPM: ${keyPath}` : keyPath})\n`,
      );
      return 0;
    }

    if (sub === 'install' && positionals[0]) {
      const work = mkdtempSync(join(tmpdir(), 'se-enrol-'));
      try {
        execFileSync('tar', ['-xf', positionals[0], '-C', work, '--no-same-owner', 'config.yaml', 'device.crt', 'ca.crt'], { stdio: 'pipe' });
        const doc = parseYaml(readFileSync(join(work, 'config.yaml'), 'utf8')) as Record<string, unknown>;
        const r = validateConfig(doc);
        if (!r.ok) throw new AppError('CONFIG_INVALID', `practice config rejected:\n${formatProblems(r.problems)}`);
        const t = r.config.telemetry;
        // Check the pair before installing anything: the certificate must match the key made here.
        const e = r.config.enrolment;
        const staged = await checkIdentityAsync(
          { deviceId: r.config.site.deviceId, certPath: join(work, 'device.crt'), keyPath: host(t.keyPath || keyPath), caPath: join(work, 'ca.crt') },
          (p) => p,
          Date.now(),
          { runner: new ProcessRunner(30_000), workDir: host(r.config.paths.runDir), tcti: e.tpmTcti || config.enrolment.tpmTcti },
        );
        if (!staged.enrolled) throw new AppError('BAD_REQUEST', `refusing the practice bundle: ${staged.reason}`);
        writeFileAtomic(host(t.caPath), readFileSync(join(work, 'ca.crt')), 0o644);
        writeFileAtomic(host(t.certPath), readFileSync(join(work, 'device.crt')), 0o644);
        // The config last: until it is in place the agent keeps running on the old one.
        writeFileAtomic(path ?? host(DEFAULT_CONFIG_PATH), stringify(r.config), 0o600);
        process.stdout.write(`enrolled as ${r.config.site.deviceId} (${r.config.site.practiceName}); restart the agent: systemctl restart surgery-edge\n`);
        return 0;
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    }

    if (sub === 'status') {
      const t = config.telemetry;
      const c = await checkIdentityAsync({ deviceId: config.site.deviceId, certPath: t.certPath, keyPath: t.keyPath, caPath: t.caPath }, host, Date.now(), {
        runner: new ProcessRunner(30_000),
        workDir: host(config.paths.runDir),
        tcti: config.enrolment.tpmTcti,
      });
      process.stdout.write(JSON.stringify(c) + '\n');
      return c.enrolled ? 0 : 1;
    }
    process.stderr.write(USAGE);
    return 2;
  },
};
