#!/usr/bin/env node
/**
 * Thin entry: parse the command line, dispatch, set the exit code. Exit codes:
 * 0 ok, 1 runtime failure, 2 usage error or invalid config. `status` adds 3 (attention) and 4
 * (something failed): see cli/status.ts.
 */
import { commands, usage } from './cli/commands.js';
import { isAppError } from '../../common/errors.js';

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const cmd = commands[name];
  if (!cmd) {
    process.stderr.write(`surgery-edge: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    return 2;
  }
  return cmd.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (isAppError(e)) {
      process.stderr.write(`surgery-edge: ${e.message}\n`);
      process.exitCode = e.code === 'CONFIG_INVALID' || e.code === 'BAD_REQUEST' ? 2 : 1;
    } else {
      process.stderr.write(`surgery-edge: unexpected error: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = 1;
    }
  },
);
