import { formatProblems, configJsonSchema, parseConfigText, validateConfig } from '../config/load.js';
import { readFileSync } from 'node:fs';
import { AppError } from '../../../common/errors.js';
import { uplinkConfigWarnings } from '../uplinks/config-advice.js';
import { parse } from '../core/cli-args.js';
import type { CliCommand } from '../core/cli-command.js';

export const checkConfigCommand: CliCommand = {
  summary: 'check-config FILE: validate a config file and list every problem (exit 2) and warning (exit 0), without starting',
  async run(args) {
    const { positionals } = parse(args, {}, true);
    const file = positionals[0];
    if (!file) throw new AppError('BAD_REQUEST', 'usage: surgery-edge check-config FILE');
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      process.stderr.write(`${file}: cannot read: ${(e as Error).message}\n`);
      return 2;
    }
    let raw: unknown;
    try {
      raw = parseConfigText(text, file);
    } catch (e) {
      process.stderr.write(`${(e as Error).message}\n`);
      return 2;
    }
    const r = validateConfig(raw);
    if (!r.ok) {
      process.stderr.write(`${file}: ${r.problems.length} problem(s)\n${formatProblems(r.problems)}\n`);
      return 2;
    }
    // Warnings do not change the exit code: the config is valid and the agent runs with it.
    const warnings = uplinkConfigWarnings(r.config);
    for (const w of warnings) process.stderr.write(`${file}: warning: ${w.path}: ${w.message}\n`);
    const note = warnings.length ? `, ${warnings.length} warning(s)` : '';
    process.stdout.write(`${file}: ok (version ${r.config.version}, ${r.config.uplinks.length} uplinks${note})\n`);
    return 0;
  },
};

export const configSchemaCommand: CliCommand = {
  summary: 'print the config JSON Schema',
  async run() {
    process.stdout.write(JSON.stringify(configJsonSchema(), null, 2) + '\n');
    return 0;
  },
};
