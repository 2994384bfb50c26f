import { existsSync, readFileSync } from 'node:fs';
import { configPathFrom, parse } from '../core/cli-args.js';
import type { CliCommand } from '../core/cli-command.js';
import { loadConfig } from '../config/load.js';
import { AppError, describeError } from '../../../common/errors.js';
import { AuditLog } from './audit.js';
import { readPassphrase, readRuntimeKey, unwrapKey } from './key.js';
import { recordsPaths } from './sources.js';
import { RecordsStore } from './store.js';

/**
 * `surgery-edge audit verify`: walk the records audit chain and name the first broken entry.
 * Exit 0 intact, 1 broken, 2 when the store cannot be opened. The data key comes from, in order:
 * --key-file (64 hex characters), SURGERY_EDGE_RECORDS_KEY, the running agent's unlocked key in the
 * run dir, or --passphrase-stdin (unwraps the key file like `records unlock`). The printed head
 * (seq + hash) is what an operator notes down to detect a later truncation of the chain.
 */
export const auditCommand: CliCommand = {
  summary: 'audit verify [--config FILE] [--db PATH] [--key-file FILE | --passphrase-stdin]: verify the records audit hash chain',
  async run(args) {
    const [sub, ...rest] = args;
    if (sub !== 'verify') {
      process.stderr.write('usage: surgery-edge audit verify [--config FILE] [--db PATH] [--key-file FILE | --passphrase-stdin] [--json]\n');
      return 2;
    }
    const { values } = parse(rest, {
      config: { type: 'string', short: 'c' },
      db: { type: 'string' },
      'key-file': { type: 'string' },
      'passphrase-stdin': { type: 'boolean' },
      json: { type: 'boolean' },
    });
    let store: RecordsStore;
    try {
      const cfgPath = configPathFrom(values.config);
      const config = loadConfig(cfgPath);
      const paths = recordsPaths(config);
      const dbPath = values.db ?? paths.db;
      if (!existsSync(dbPath)) throw new AppError('NOT_FOUND', `no records store at ${dbPath}`);
      const key = values['passphrase-stdin'] ? await unwrapKey(paths.key, await readPassphrase()) : readKey(values['key-file'], paths.runtimeKey);
      store = RecordsStore.open(dbPath, { key });
    } catch (e) {
      process.stderr.write(`surgery-edge audit: ${describeError(e).message}\n`);
      return 2;
    }
    try {
      const r = AuditLog.open(store.db, Date.now).verify();
      if (values.json) process.stdout.write(JSON.stringify(r) + '\n');
      else if (r.ok) process.stdout.write(`audit chain intact: ${r.entries} entries${r.head ? `, head seq ${r.head.seq} hash ${r.head.hash}` : ''}\n`);
      else process.stdout.write(`audit chain BROKEN at seq ${r.firstBrokenSeq}: ${r.reason} (${r.entries} entries verified before it)\n`);
      return r.ok ? 0 : 1;
    } finally {
      store.close();
    }
  },
};

function readKey(file: string | undefined, runtimeKeyPath: string): Buffer {
  if (!file && !process.env.SURGERY_EDGE_RECORDS_KEY) {
    const runtime = readRuntimeKey(runtimeKeyPath);
    if (runtime) return runtime;
  }
  const hex = (file ? readFileSync(file, 'utf8') : (process.env.SURGERY_EDGE_RECORDS_KEY ?? '')).trim();
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw new AppError('BAD_REQUEST', 'records cache is locked: give --passphrase-stdin, --key-file FILE or SURGERY_EDGE_RECORDS_KEY (64 hex characters)');
  }
  return Buffer.from(hex, 'hex');
}
