import { checkConfigCommand, configSchemaCommand } from './config-commands.js';
import { runCommand } from './run.js';
import { hardwareCommand } from './hardware.js';
import { statusCommand } from './status.js';
import { userCommand } from './user.js';
import { drillCommand } from '../drills/cli.js';
import { VERSION } from '../version.js';
import { mqttSchemasCommand } from '../telemetry/schemas-cli.js';
import { auditCommand } from '../records/audit-cli.js';
import { recordsCommand } from '../records/cli.js';
import { updateCommand } from '../update/cli.js';
import { enrolCommand } from '../enrolment/cli.js';
import { backupCommand } from '../backup/cli.js';
import { setupCodeCommand } from '../setup/cli.js';

export type { CliCommand } from '../core/cli-command.js';
import type { CliCommand } from '../core/cli-command.js';

/** One entry per subcommand; each lives in its own file under cli/. */
export const commands: Record<string, CliCommand> = {
  run: runCommand,
  status: statusCommand,
  user: userCommand,
  drill: drillCommand,
  'check-config': checkConfigCommand,
  'config-schema': configSchemaCommand,
  'mqtt-schemas': mqttSchemasCommand,
  audit: auditCommand,
  records: recordsCommand,
  update: updateCommand,
  enrol: enrolCommand,
  backup: backupCommand,
  'setup-code': setupCodeCommand,
  hardware: hardwareCommand,
  version: {
    summary: 'print the agent version',
    run: async () => {
      process.stdout.write(`${VERSION}\n`);
      return 0;
    },
  },
};

export function usage(): string {
  const lines = Object.entries(commands).map(([n, c]) => `  ${n.padEnd(16)} ${c.summary}`);
  return `usage: surgery-edge <command> [options]\n\ncommands:\n${lines.join('\n')}\n`;
}
