/**
 * The real Agent composition root running drills + status (HTTPS, real openssl, real state db)
 * plus one capability offering a drill step whose outcome is set by env STEP_PASSES (1/0).
 * argv: CONFIG_JSON_PATH. Prints `ready` when listening.
 */
import { readFileSync } from 'node:fs';
import { Agent } from '../../../agent/src/agent.js';
import { validateConfig } from '../../../agent/src/config/load.js';
import type { Capability, DrillStep, Health } from '../../../agent/src/core/capability.js';
import { DrillsCapability } from '../../../agent/src/drills/drills.js';
import { StatusCapability } from '../../../agent/src/status/status.js';

class StepCap implements Capability {
  readonly name = 'probe';
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  health(): Health {
    return { status: 'ok', summary: 'harness' };
  }
  drillSteps(): DrillStep[] {
    return [
      {
        name: 'harness step',
        run: async () => ({ passed: process.env.STEP_PASSES === '1', detail: process.env.STEP_PASSES === '1' ? 'fine' : 'broken on purpose' }),
      },
    ];
  }
}

const r = validateConfig(JSON.parse(readFileSync(process.argv[2]!, 'utf8')));
if (!r.ok) {
  process.stderr.write(JSON.stringify(r.problems) + '\n');
  process.exit(2);
}
const agent = new Agent({ config: r.config, capabilities: () => [new StepCap(), new DrillsCapability(), new StatusCapability()], logSink: () => {} });
await agent.start();
process.stdout.write('ready\n');
const stop = () => void agent.stop('SIGTERM').then(() => process.exit(0));
process.on('SIGTERM', stop);
setInterval(() => {}, 1 << 30);
