import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { hashPassword } from '../../agent/src/auth/password.js';
import { describeError } from '../../agent/src/core/errors.js';
import { loadFleetConfig } from './config.js';
import { Fleet } from './fleet.js';
import { ROLES, type Role } from './store/account-store.js';
import { Store } from './store/store.js';

/**
 * fleet run [--config FILE] [--port N]     the fleet manager (embedded defaults without a config)
 * fleet user add NAME --role R [--practice ODS]   password on stdin
 */
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { config: { type: 'string' }, port: { type: 'string' }, role: { type: 'string' }, practice: { type: 'string' }, 'data-dir': { type: 'string' } },
});
const overrides: Record<string, unknown> = {};
if (values['data-dir']) overrides.dataDir = values['data-dir'];
const cmd = positionals[0] ?? 'run';

async function main(): Promise<number> {
  const base = loadFleetConfig(values.config, overrides);
  const config = values.port ? { ...base, http: { ...base.http, port: Number(values.port) } } : base;
  if (cmd === 'user' && positionals[1] === 'add') {
    const name = positionals[2];
    const role = values.role as Role;
    if (!name || !ROLES.includes(role)) return usage(`user add NAME --role ${ROLES.join('|')} [--practice ODS]`);
    if (role === 'practice-manager' && !values.practice) return usage('a practice-manager needs --practice ODS');
    const password = readFileSync(0, 'utf8').trim();
    if (password.length < 10) return usage('password (on stdin) must be at least 10 characters');
    const store = await Store.fromConfig(config);
    await store.accounts.putUser({ username: name, hash: hashPassword(password), role, practice: values.practice ?? null }, Date.now());
    await store.close();
    process.stdout.write(`user ${name} (${role}) saved\n`);
    return 0;
  }
  if (cmd !== 'run') return usage('run | user add');
  const fleet = new Fleet({ config });
  await fleet.start();
  const store = fleet.ctx.store;
  if ((await store.accounts.userCount()) === 0) {
    // First start: one admin with a random password, shown once (change it with `fleet user add`).
    const password = randomBytes(9).toString('base64url');
    await store.accounts.putUser({ username: 'admin', hash: hashPassword(password), role: 'icb-admin', practice: null }, Date.now());
    process.stdout.write(`first admin login: admin / ${password}\n`);
  }
  process.stdout.write(`dashboard: ${fleet.web.url}/\nbroker: ${fleet.ctx.config.mqtt.url} (prefix ${config.mqtt.prefix}, shared group ${config.mqtt.shareGroup})\n${fleet.enrolment.url ? `enrolment (boxes' enrolment.claimUrl): ${fleet.enrolment.url}\n` : ''}`);
  if (fleet.broker) process.stdout.write(`embedded broker: enrol a device with: provisioning/pki.sh device ${fleet.broker.pki} <device-id>\n`);
  await new Promise<void>((res) => {
    const stop = () => res();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await fleet.stop();
  return 0;
}

function usage(msg: string): number {
  process.stderr.write(`usage: fleet ${msg}\n`);
  return 2;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    const d = describeError(e);
    const problems = (e as { details?: { problems?: unknown } }).details?.problems;
    process.stderr.write(`fleet: ${d.code}: ${d.message}${problems ? '\n' + JSON.stringify(problems, null, 1) : ''}\n`);
    process.exit(1);
  },
);
