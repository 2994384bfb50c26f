/**
 * An agent process for the backup fleet test: the real Agent composition root with the real
 * BackupCapability, TelemetryCapability and StatusCapability (the loopback API `backup now` uses),
 * plus the representative stand-ins (failover on 4G with the wired line down, records with no
 * capture pending). argv: CONFIG_JSON_PATH. Prints `ready` once started.
 */
import { readFileSync } from 'node:fs';
import { Agent } from '../../../agent/src/agent.js';
import { BackupCapability } from '../../../agent/src/backup/backup.js';
import { validateConfig } from '../../../agent/src/config/load.js';
import { StatusCapability } from '../../../agent/src/status/status.js';
import { TelemetryCapability } from '../../../agent/src/telemetry/telemetry.js';
import { representativeCapabilities } from '../telemetry/representative-caps.js';

const path = process.argv[2]!;
const r = validateConfig(JSON.parse(readFileSync(path, 'utf8')));
if (!r.ok) {
  process.stderr.write(JSON.stringify(r.problems) + '\n');
  process.exit(2);
}
const agent = new Agent({
  config: r.config,
  configPath: path,
  capabilities: () => [...representativeCapabilities(), new TelemetryCapability(), new BackupCapability(), new StatusCapability()],
  web: { https: false },
  onReboot: async () => {},
});
await agent.start();
process.stdout.write('ready\n');
const stop = () => void agent.stop('SIGTERM').then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setInterval(() => {}, 1 << 30);
