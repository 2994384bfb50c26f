import { existsSync } from 'node:fs';
import type { ParseArgsConfig } from 'node:util';
import { util } from '../../../common/node-builtins.js';
import { AppError } from '../../../common/errors.js';

export const DEFAULT_CONFIG_PATH = '/etc/surgery-edge/config.yaml';

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, allowPositionals = false) {
  try {
    return util.parseArgs({ args, options, allowPositionals, strict: true });
  } catch (e) {
    throw new AppError('BAD_REQUEST', (e as Error).message);
  }
}

/** The config file a command should read: --config, else the default path when it exists, else embedded defaults. */
export function configPathFrom(flag: string | undefined): string | undefined {
  return flag ?? (existsSync(DEFAULT_CONFIG_PATH) ? DEFAULT_CONFIG_PATH : undefined);
}
