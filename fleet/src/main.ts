import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { hashPassword } from '../../common/password.js';
import { describeError } from '../../common/errors.js';
import { help } from './cli/help.js';
import { userCommand } from './cli/users.js';
import { loadFleetConfig } from './config.js';
import { Fleet } from './fleet.js';
import { Store } from './store/store.js';

/** The fleet CLI: parse, dispatch, exit code (cli/help.ts says what each command does). */
const COMMANDS = ['run', 'user', 'help'];

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        port: { type: 'string' },
        role: { type: 'string' },
        practice: { type: 'string' },
        'data-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    return usage(`${(e as Error).message}\n\n${help()}`);
  }
  const { values, positionals } = parsed;
  const cmd = positionals[0] ?? 'run';
  if (cmd === 'help') return out(help(positionals[1]));
  if (values.help) return out(help(positionals[0] ?? ''));
  if (!COMMANDS.includes(cmd)) return usage(`unknown command ${cmd}\n\n${help()}`);
  const overrides: Record<string, unknown> = {};
  if (values['data-dir']) overrides.dataDir = values['data-dir'];
  const base = loadFleetConfig(values.config, overrides);
  if (values.port && !/^\d+$/.test(values.port)) return usage('--port must be a number');
  const config = values.port ? { ...base, http: { ...base.http, port: Number(values.port) } } : base;
  if (cmd === 'user') {
    if (!positionals[1]) return usage(help('user'));
    const store = await Store.fromConfig(config);
    try {
      process.stdout.write(
        await userCommand(store, {
          action: positionals[1],
          name: positionals[2],
          role: values.role,
          practice: values.practice,
          password: () => readFileSync(0, 'utf8').replace(/\r?\n$/, ''),
        }),
      );
    } finally {
      await store.close();
    }
    return 0;
  }
  const fleet = new Fleet({ config });
  await fleet.start();
  const store = fleet.ctx.store;
  if ((await store.accounts.userCount()) === 0) {
    // First start: one admin with a random password, shown once (change it with `fleet user reset-password admin`).
    const password = randomBytes(12).toString('base64url');
    await store.accounts.putUser({ username: 'admin', hash: hashPassword(password), role: 'icb-admin', practice: null }, Date.now());
    await store.accounts.audit({
      at: Date.now(),
      username: 'fleet',
      device_id: null,
      action: 'user-add',
      args: JSON.stringify({ user: 'admin' }),
      outcome: 'ok',
      detail: 'first start',
    });
    process.stdout.write(`first admin login: admin / ${password}\n`);
  }
  process.stdout.write(
    `dashboard: ${fleet.web.url}/\nbroker: ${fleet.ctx.config.mqtt.url} (prefix ${config.mqtt.prefix}, shared ` +
      `group ${config.mqtt.shareGroup})\n${fleet.enrolment.url ? `enrolment (boxes' enrolment.claimUrl): ${fleet.enrolment.url}\n` : ''}`,
  );
  if (fleet.web.tls?.selfSigned)
    process.stdout.write(
      `\n*** WARNING: the dashboard uses a SELF-SIGNED certificate (${fleet.web.tls.certPath}).\n*** Browsers will warn and users cannot tell this ` +
        `server from an impostor: set http.tls.certPath/keyPath.\n\n`,
    );
  if (fleet.broker) process.stdout.write(`embedded broker: enrol a device with: provisioning/pki.sh device ${fleet.broker.pki} <device-id>\n`);
  await new Promise<void>((res) => {
    const stop = () => res();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await fleet.stop();
  return 0;
}

function out(text: string): number {
  process.stdout.write(text);
  return 0;
}

function usage(msg: string): number {
  process.stderr.write(`fleet: ${msg.endsWith('\n') ? msg : msg + '\n'}`);
  return 2;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    const d = describeError(e);
    const problems = (e as { details?: { problems?: unknown } }).details?.problems;
    process.stderr.write(`fleet: ${d.code}: ${d.message}${problems ? '\n' + JSON.stringify(problems, null, 1) : ''}\n`);
    process.exit(d.code === 'BAD_REQUEST' ? 2 : 1);
  },
);
