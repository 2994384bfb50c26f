import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { CliCommand } from '../core/cli-command.js';
import { writeFileAtomic } from '../core/fs.js';
import { contractJsonSchemas } from '../../../contract/mqtt.js';
import { eventsMarkdown, reportsMarkdown } from '../../../contract/docs.js';

/** `surgery-edge mqtt-schemas DIR`: writes the MQTT contract's JSON Schemas (docs/schemas/mqtt). */
export const mqttSchemasCommand: CliCommand = {
  summary: 'mqtt-schemas DIR: write the MQTT topic contract as JSON Schema files',
  async run(args) {
    const dir = args[0];
    if (!dir) {
      process.stderr.write('usage: surgery-edge mqtt-schemas DIR\n');
      return 2;
    }
    mkdirSync(dir, { recursive: true });
    for (const [file, schema] of Object.entries(contractJsonSchemas())) writeFileAtomic(join(dir, file), JSON.stringify(schema, null, 2) + '\n');
    // The field tables beside the schemas' parent docs folder: docs/schemas/mqtt -> docs/mqtt-reports.md.
    const md = join(dir, '..', '..', 'mqtt-reports.md');
    writeFileAtomic(md, reportsMarkdown() + '\n');
    const events = join(dir, '..', '..', 'mqtt-events.md');
    writeFileAtomic(events, eventsMarkdown() + '\n');
    process.stdout.write(`wrote ${Object.keys(contractJsonSchemas()).length} schemas to ${dir} and the field tables to ${md} and ${events}\n`);
    return 0;
  },
};
