/**
 * A small agent process for the telemetry integration tests and the benchmark: the real Agent
 * composition root (real ctx, real state db) running only the telemetry capability, plus an
 * event generator. argv: CONFIG_JSON_PATH [--every MS] [--label L] [--count N] [--config-path FILE]
 * Prints `emitted <key>` after each bus event has been emitted (i.e. committed to the outbox).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Agent } from '../../../agent/src/agent.js';
import { validateConfig } from '../../../agent/src/config/load.js';
import { TelemetryCapability } from '../../../agent/src/telemetry/telemetry.js';
import { representativeCapabilities } from './representative-caps.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    every: { type: 'string', default: '0' },
    label: { type: 'string', default: 'x' },
    count: { type: 'string', default: '0' },
    active: { type: 'string' },
    representative: { type: 'boolean', default: false },
    // Where an applied remote config is persisted (as /etc/surgery-edge/config.yaml on a device).
    'config-path': { type: 'string' },
  },
});
const r = validateConfig(JSON.parse(readFileSync(positionals[0]!, 'utf8')));
if (!r.ok) {
  process.stderr.write(JSON.stringify(r.problems) + '\n');
  process.exit(2);
}
// SIGUSR2 makes the representative records cache stale: a meaningful change for the 4G tests.
const live = { recordsStale: false };
process.on('SIGUSR2', () => {
  live.recordsStale = true;
  process.stdout.write('changed records.stale\n');
});
const agent = new Agent({
  config: r.config,
  configPath: values['config-path'],
  capabilities: () => [...(values.representative ? representativeCapabilities(live) : []), new TelemetryCapability()],
  onReboot: async (reason) => {
    process.stdout.write(`reboot ${reason}\n`);
  },
});
await agent.start();
if (values.active) agent.bus.emit('failover.switched', { from: null, to: values.active, kind: 'initial', reason: 'harness', at: Date.now() });
process.stdout.write('ready\n');
const every = Number(values.every);
const count = Number(values.count);
let n = 0;
if (every > 0) {
  const t = setInterval(() => {
    const key = `${values.label}-${n}`;
    agent.bus.emit('uplink.changed', { name: 'wan', from: 'up', to: 'down', reason: key, at: Date.now() });
    process.stdout.write(`emitted ${key}\n`);
    if (count && ++n >= count) clearInterval(t);
    else if (!count) n++;
  }, every);
}
const stop = () => void agent.stop('SIGTERM').then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setInterval(() => {}, 1 << 30);
