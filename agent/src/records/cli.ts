import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { configPathFrom, parse } from '../core/cli-args.js';
import type { CliCommand } from '../core/cli-command.js';
import { loadConfig } from '../config/load.js';
import { systemClock } from '../../../common/clock.js';
import { describeError } from '../../../common/errors.js';
import { createLogger } from '../../../common/log.js';
import { VERSION } from '../version.js';
import { createKey, readPassphrase, readRuntimeKey, shredFile, unwrapKey, writeRuntimeKey } from './key.js';
import { buildSources, recordsPaths } from './sources.js';
import { RecordsStore } from './store.js';
import { runSync } from './sync.js';

const out = (s: string) => process.stdout.write(s + '\n');

/**
 * `surgery-edge records init|unlock|lock|sync|destroy-key`. Passphrases are read from stdin (never
 * from argv, which other users can see in `ps`). Unlock hands the key to the running agent through
 * the RAM-backed run dir.
 */
export const recordsCommand: CliCommand = {
  summary: 'records init|unlock|lock|sync|destroy-key [--config FILE]: encrypted records cache (passphrase on stdin)',
  async run(args) {
    const [sub, ...rest] = args;
    const { values } = parse(rest, { config: { type: 'string', short: 'c' }, yes: { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' } });
    const cfgPath = configPathFrom(values.config);
    const config = loadConfig(cfgPath);
    const paths = recordsPaths(config);
    try {
      switch (sub) {
        case 'init': {
          const key = await createKey(paths.key, await readPassphrase());
          RecordsStore.open(paths.db, { key }).close();
          writeRuntimeKey(paths.runtimeKey, key);
          out(`records key created at ${paths.key}; cache unlocked`);
          return 0;
        }
        case 'unlock': {
          const key = await unwrapKey(paths.key, await readPassphrase());
          RecordsStore.open(paths.db, { key }).close(); // proves the key opens this database
          writeRuntimeKey(paths.runtimeKey, key);
          out('records cache unlocked');
          return 0;
        }
        case 'lock':
          rmSync(paths.runtimeKey, { force: true });
          out('run-dir key removed; restart the agent to close an open cache');
          return 0;
        case 'destroy-key': {
          if (!values.yes) {
            process.stderr.write('destroy-key makes the records cache permanently unreadable; repeat with --yes\n');
            return 2;
          }
          const had = shredFile(paths.key);
          // The TPM-sealed copy (platform/tpm.ts) lives beside the wrapped key.
          for (const f of ['records.tpm.pub', 'records.tpm.priv']) shredFile(join(dirname(paths.key), f));
          rmSync(paths.runtimeKey, { force: true });
          for (const f of [paths.db, `${paths.db}-wal`, `${paths.db}-shm`]) rmSync(f, { force: true });
          out(had ? 'records key destroyed; cache deleted' : 'no records key was present; cache deleted');
          return 0;
        }
        case 'sync': {
          const key = readRuntimeKey(paths.runtimeKey) ?? (await unwrapKey(paths.key, await readPassphrase()));
          const store = RecordsStore.open(paths.db, { key });
          const { dayList, summaries } = buildSources(config, VERSION);
          const r = config.records;
          let last = 0;
          try {
            const res = await runSync(store, dayList, summaries, {
              timeZone: r.timeZone,
              workingDays: r.workingDays,
              concurrency: r.concurrency,
              summaryMaxAgeMs: r.summaryMaxAgeMs,
              retries: r.retries,
              clock: systemClock,
              log: createLogger({ level: values.quiet ? 'error' : 'warn' }).child('records'),
              onProgress: (p) => {
                const now = Date.now();
                if (values.quiet || (now - last < 500 && p.done !== p.total && p.phase === 'summaries')) return;
                last = now;
                process.stderr.write(`sync ${p.phase}: ${p.done}/${p.total} patients, ${p.errors} errors\n`);
              },
            });
            out(JSON.stringify(res));
            return res.errors || res.dayListErrors.length ? 1 : 0;
          } finally {
            store.close();
          }
        }
        default:
          process.stderr.write(`usage: surgery-edge ${recordsCommand.summary}\n`);
          return 2;
      }
    } catch (e) {
      process.stderr.write(`surgery-edge records ${sub}: ${describeError(e).message}\n`);
      return 1;
    }
  },
};
