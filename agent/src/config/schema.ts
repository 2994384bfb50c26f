import { Type, type Static } from '@sinclair/typebox';
import { BackupSection } from '../backup/config-schema.js';
import { CellularSection } from '../cellular/config-schema.js';
import { EnrolmentSection } from '../enrolment/config-schema.js';
import { FailoverSection } from '../failover/config-schema.js';
import { RecordsSection } from '../records/config-schema.js';
import { StatusSection } from '../status/config-schema.js';
import { TelemetrySection } from '../telemetry/config-schema.js';
import { TelephonySection } from '../telephony/config-schema.js';
import { UplinksSection } from '../uplinks/config-schema.js';
import { UpdateSection } from '../update/config-schema.js';
import { WifiSection } from '../wifi/config-schema.js';
import { Obj } from './types.js';

/**
 * The one config schema: TypeScript type (Static), defaults, validation and the exported JSON Schema
 * all come from here. Each capability owns its section in its own folder.
 */
export const CONFIG_VERSION = 1;

export const ConfigSchema = Type.Object(
  {
    version: Type.Literal(CONFIG_VERSION, { default: CONFIG_VERSION, description: 'Config format version; older files are migrated' }),
    revision: Type.Integer({ default: 0, minimum: 0, description: 'Desired-config revision from the fleet; local files use 0' }),
    site: Obj({
      deviceId: Type.String({ default: 'dev-appliance', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' }),
      practiceName: Type.String({ default: 'Demo Surgery' }),
      odsCode: Type.String({ default: 'A00000', pattern: '^[A-Z0-9]{3,10}$' }),
    }),
    paths: Obj({
      stateDir: Type.String({ default: '/var/lib/surgery-edge', description: 'Persistent state: SQLite databases (power-cut safe)' }),
      runDir: Type.String({ default: '/run/surgery-edge', description: 'Volatile runtime files (tmpfs): status snapshot, sockets' }),
      root: Type.String({ default: '/', description: 'Host filesystem root prefix (tests use a fixture tree)' }),
    }),
    log: Obj({
      level: Type.Union([Type.Literal('debug'), Type.Literal('info'), Type.Literal('warn'), Type.Literal('error'), Type.Literal('silent')], {
        default: 'info',
      }),
      format: Type.Union([Type.Literal('json'), Type.Literal('pretty')], { default: 'json' }),
    }),
    uplinks: UplinksSection,
    failover: FailoverSection,
    cellular: CellularSection,
    wifi: WifiSection,
    telemetry: TelemetrySection,
    records: RecordsSection,
    status: StatusSection,
    telephony: TelephonySection,
    update: UpdateSection,
    enrolment: EnrolmentSection,
    backup: BackupSection,
  },
  { additionalProperties: false, $id: 'https://surgery-edge.nhs.invalid/schema/config.json', title: 'surgery-edge configuration' },
);

export type Config = Static<typeof ConfigSchema>;

// The capability context and agent control carry the config; core/ declares them without it (core imports nothing).
declare module '../core/capability.js' {
  interface Ctx {
    config: Config;
  }
  interface AgentControl {
    /** Validate and apply a new config: persist it atomically, restart capabilities on it. Throws CONFIG_INVALID. */
    reconfigure(next: unknown, source: 'file' | 'remote'): Promise<Config>;
  }
}
