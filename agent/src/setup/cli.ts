import { join } from 'node:path';
import { listUsers } from '../auth/accounts.js';
import { configPathFrom, parse } from '../core/cli-args.js';
import type { CliCommand } from '../core/cli-command.js';
import { loadConfig } from '../config/load.js';
import { openStateDb } from '../core/db.js';
import { SetupCodeStore } from './code.js';

/**
 * `surgery-edge setup-code`: the console fallback for the set-up code (the fleet's device page is
 * the normal way). Root only in practice: both files are 0600. Prints the current code, or issues
 * one when none can be shown (after a reboot before the agent has started, for instance);
 * `--new` replaces the code (the old one stops working at once).
 */
export const setupCodeCommand: CliCommand = {
  summary: 'print the one-time set-up code for the first-run wizard (console fallback)',
  async run(args) {
    const { values } = parse(args, { config: { type: 'string', short: 'c' }, new: { type: 'boolean' } });
    const config = loadConfig(configPathFrom(values.config));
    const store = new SetupCodeStore(config.paths);
    if (!config.status.setup.required) {
      process.stderr.write('first-run set-up is not used on this box (status.setup.required is false)\n');
      return 1;
    }
    const db = openStateDb(join(config.paths.stateDir, 'agent.db'));
    try {
      if (store.read().done || listUsers(db).some((u) => u.role === 'admin' && !u.disabledAt)) {
        process.stderr.write('this box is already set up: manage accounts on the admin screen (/admin/users)\n');
        return 1;
      }
    } finally {
      db.close();
    }
    const code = values.new ? await store.issue(Date.now()) : await store.ensure(Date.now());
    if (!code) return 1;
    process.stdout.write(`${code}\n`);
    return 0;
  },
};
