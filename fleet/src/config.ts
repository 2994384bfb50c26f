import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { AppError } from '../../common/errors.js';
import { schemaProblems } from '../../contract/mqtt.js';

/**
 * The fleet manager's one config schema: types, defaults and validation from one declaration
 * (as the agent's config/schema.ts). Every field has a default, so `{}` is the embedded set-up:
 * SQLite in ./fleet-data and a local mosquitto the fleet starts itself.
 */
const Int = (def: number, min: number, description: string) => Type.Integer({ default: def, minimum: min, description });
const Str = (def: string, description: string) => Type.String({ default: def, description });

export const FleetConfigSchema = Type.Object({
  dataDir: Str('fleet-data', 'SQLite database, embedded broker files, PKI for the embedded set-up'),
  instanceId: Str('', 'Stable id of this instance (MQTT client id and response topic); default fleet-<hostname>'),
  db: Type.Object(
    {
      kind: Type.Union([Type.Literal('sqlite'), Type.Literal('postgres')], { default: 'sqlite' }),
      path: Str('', 'SQLite file; default <dataDir>/fleet.db'),
      url: Str('', 'PostgreSQL connection string (postgres://user@host/db or ?host=/socket/dir)'),
      poolSize: Int(5, 2, 'PostgreSQL pool size (at least 2: a database-wide lock holds one connection while its work uses another)'),
    },
    { default: {} },
  ),
  mqtt: Type.Object(
    {
      url: Str('', 'Broker URL; empty: start a local mosquitto on a free loopback port'),
      prefix: Str('surgery-edge/v1', 'Contract prefix (carries the major version)'),
      shareGroup: Str('fleet', 'MQTT 5 shared subscription group: instances in one group split the load'),
      caPath: Str('', 'PEM CA'),
      certPath: Str('', 'Client certificate: the fleet identity (provisioning/pki.sh fleet; subject CN=fleet,OU=fleet-manager,O=surgery-edge)'),
      keyPath: Str('', 'Client key'),
      keepaliveS: Int(30, 5, 'Keepalive'),
      sessionExpiryS: Int(3600, 0, 'Broker keeps our subscriptions and queues QoS 1 messages this long while we are away'),
      maxPayloadBytes: Int(256 * 1024, 1024, 'Bigger inbound payloads are counted and dropped'),
      backoffInitialMs: Int(500, 10, 'Reconnect backoff start'),
      backoffMaxMs: Int(30_000, 100, 'Reconnect backoff cap'),
      commandTimeoutMs: Int(30_000, 100, 'How long a command waits for its response'),
      canaryMs: Int(60_000, 0, 'How often a canary goes through the shared group to detect a foreign member (0: off)'),
      canaryTimeoutMs: Int(30_000, 100, 'A canary not answered by a fleet instance within this counts as lost'),
    },
    { default: {} },
  ),
  http: Type.Object(
    {
      host: Str('127.0.0.1', 'Dashboard listen address'),
      port: Int(0, 0, 'Dashboard port; 0 picks a free one'),
      sessionTtlMs: Int(8 * 3600_000, 60_000, 'Absolute sign-in lifetime, however busy the session'),
      idleTimeoutMs: Int(30 * 60_000, 10_000, 'Sign a session out after this long without a request'),
      maxFailedAttempts: Int(10, 1, 'Wrong passwords in a row before the account locks (even the right password is then refused)'),
      lockoutMs: Int(15 * 60_000, 1000, 'How long a locked account stays locked (`fleet user unlock` ends it sooner)'),
      maxLoginAttemptsPerIp: Int(30, 1, 'Failed sign-in attempts one address may make per loginWindowMs before it must wait (429)'),
      loginWindowMs: Int(15 * 60_000, 1000, 'Window for maxLoginAttemptsPerIp'),
      trustProxy: Type.Boolean({ default: false, description: 'Take the client address from X-Forwarded-For (only behind a reverse proxy you run)' }),
      tls: Type.Object(
        {
          enabled: Type.Boolean({ default: false, description: 'Serve the dashboard over HTTPS (and mark the session cookie Secure)' }),
          certPath: Str('', 'PEM certificate (chain); empty with enabled: a self-signed one is generated in <dataDir>/tls'),
          keyPath: Str('', 'PEM private key matching certPath'),
        },
        { default: {} },
      ),
      pageSize: Int(100, 10, 'Devices per list page'),
      liveMs: Int(5000, 100, 'How often a live page (the device list, by server-sent events) looks for changes to push'),
    },
    { default: {} },
  ),
  ingest: Type.Object(
    {
      batchMs: Int(100, 1, 'Inbound messages are written in one transaction per batch'),
      batchMax: Int(500, 1, 'Largest batch'),
      sampleRetentionDays: Int(400, 1, 'History kept for charts and reports'),
      peerHeartbeatMs: Int(10_000, 100, 'How often this instance writes its heartbeat to the database and looks for dead peers'),
      peerDeadMs: Int(45_000, 500, "A peer whose heartbeat is older than this is dead: a survivor drains its broker session's queued messages"),
      peerDrainIdleMs: Int(5000, 100, "Draining a dead peer's session ends once no message has come for this long (and all are stored)"),
      peerTakeoverTimeoutMs: Int(120_000, 1000, 'A drain that has not finished by then is abandoned; another instance (or this one) may claim it again'),
    },
    { default: {} },
  ),
  alerts: Type.Object(
    {
      evaluateMs: Int(30_000, 100, 'How often the rules run'),
      offlineMin: Int(15, 0, 'Device offline longer than this'),
      cellularMin: Int(60, 0, 'On 4G longer than this'),
      dataCapPcts: Type.Array(Type.Integer({ minimum: 1, maximum: 1000 }), { default: [75, 95, 100] }),
      webhookUrl: Str('', 'POST each alert as JSON here'),
      smtp: Type.Object(
        {
          host: Str('', 'SMTP relay host; empty: no email'),
          port: Int(25, 1, 'SMTP port'),
          from: Str('fleet@surgery-edge.invalid', 'Envelope and header From'),
          to: Type.Array(Type.String(), { default: [] }),
          security: Type.Union([Type.Literal('none'), Type.Literal('starttls'), Type.Literal('tls')], {
            default: 'none',
            description: 'none (internal relay), starttls (port 587; refused if the relay does not offer it), tls (implicit, port 465)',
          }),
          caPath: Str('', "PEM CA for the relay's certificate; empty: the system's CAs"),
          username: Str('', 'SMTP AUTH user; empty: no AUTH (AUTH needs starttls or tls)'),
          passwordFile: Str('', 'File holding the SMTP AUTH password (kept out of the config file)'),
          auth: Type.Union([Type.Literal('auto'), Type.Literal('plain'), Type.Literal('login')], {
            default: 'auto',
            description: 'auto: PLAIN when offered, else LOGIN',
          }),
        },
        { default: {} },
      ),
    },
    { default: {} },
  ),
  rollouts: Type.Object(
    {
      tickMs: Int(5000, 50, 'How often active rollouts are stepped'),
      canaryPct: Type.Number({ default: 5, minimum: 0.1, maximum: 100, description: "Share of a rollout's devices that go first (at least one)" }),
      soakMin: Type.Number({ default: 30, minimum: 0, description: 'Default soak: canaries must stay healthy this long after applying' }),
      applyTimeoutMs: Int(15 * 60_000, 1000, 'A published device that has not applied (birth with the new revision) by then is unhealthy'),
      offlineGraceMs: Int(3 * 60_000, 1000, 'Offline longer than this after the publish is unhealthy (applying restarts the agent: a short gap is expected)'),
      claimTimeoutMs: Int(60_000, 1000, 'A publish claimed by an instance that died is retried after this (same revision: idempotent on the device)'),
      publishPerTick: Int(500, 1, 'Most devices published per tick in the "all" phase'),
      stopFailPct: Type.Number({
        default: 10,
        minimum: 0.1,
        maximum: 100,
        description: 'Second wave (rollouts and update campaigns): stop sending once this share of its devices (at least one) has failed',
      }),
    },
    { default: {} },
  ),
  campaigns: Type.Object(
    {
      tickMs: Int(5000, 50, 'How often running update campaigns are stepped'),
      soakMin: Type.Number({ default: 60, minimum: 0, description: 'Default soak: canaries must stay healthy on the new version this long' }),
      maxInFlight: Int(20, 1, 'Most boxes downloading or installing at once (spares the update server and the HSCN links)'),
      installTimeoutMs: Int(60 * 60_000, 1000, 'A box that accepted the update but has not committed it (or said why not) by then has failed'),
      uplinkFreshMs: Int(15 * 60_000, 1000, "A box's uplink is 'unknown' (held like 4G) when its last telemetry is older than this"),
      claimTimeoutMs: Int(2 * 60_000, 1000, 'A send claimed by an instance that died is retried after this'),
    },
    { default: {} },
  ),
  auth: Type.Object(
    {
      totp: Type.Union([Type.Literal('off'), Type.Literal('optional'), Type.Literal('required-for-icb-admin')], {
        default: 'optional',
        description:
          'TOTP second factor: off (passwords only; secrets kept but not asked for), optional (anyone may set one up on their ' +
          'Account page), required-for-icb-admin (an icb-admin without one can only set one up until they do)',
      }),
      totpKeyPath: Str('', 'Key that seals TOTP secrets in the store; empty: <dataDir>/totp.key (created 0600). Instances sharing a database share it'),
      totpIssuer: Str('surgery-edge fleet', 'Name authenticator apps show next to the code'),
    },
    { default: {} },
  ),
  claim: Type.Object(
    {
      enabled: Type.Boolean({
        default: true,
        description: 'Serve the enrolment endpoint boxes claim themselves through, and the "Waiting to be claimed" view',
      }),
      host: Str('127.0.0.1', 'Enrolment endpoint (HTTPS) listen address; boxes reach it from the practices'),
      port: Int(0, 0, 'Enrolment endpoint port; 0 picks a free one'),
      tlsCertPath: Str('', "Enrolment endpoint's server certificate (from the ICB CA; boxes pin that CA); empty: the embedded broker's"),
      tlsKeyPath: Str('', "Its key; empty: the embedded broker's"),
      caCertPath: Str('', "The ICB CA that signs device certificates (the broker trusts it); empty: the embedded broker's"),
      caKeyPath: Str('', "Its private key (keep this host locked down, or use an intermediate CA); empty: the embedded broker's"),
      issuedDir: Str(
        '',
        "Where each certificate issued by claiming is also written as <device-id>.crt, for the broker's registration " +
          "(provisioning/broker-register.sh, or the embedded broker's registrar); empty: the embedded broker's pki/devices",
      ),
      brokers: Type.Array(Type.String({ pattern: '^mqtts://[A-Za-z0-9.-]+(:[0-9]+)?$' }), {
        default: [],
        description: 'Broker URLs a claimed box is given; empty: mqtt.url',
      }),
      codeTtlMs: Int(24 * 3600_000, 60_000, 'A claim code (and its request) expires this long after the box sent it'),
      certDays: Int(825, 1, 'Validity of a device certificate issued by claiming'),
      failureWindowMs: Int(15 * 60_000, 1000, 'Window for counting wrong claim attempts'),
      maxFailuresPerAddress: Int(10, 1, 'Wrong codes from one address in the window before it is refused'),
      maxFailuresPerCode: Int(5, 1, 'Attempts with one wrong, expired or used code in the window before that code is refused'),
      maxPendingPerAddress: Int(50, 1, 'Unclaimed requests one address may hold (a flood of boxes from one site is refused past this)'),
      pollAfterMs: Int(15_000, 100, 'Told to boxes: how often to ask'),
    },
    { default: {} },
  ),
  inventory: Type.Array(
    Type.Object({
      deviceId: Type.String(),
      practice: Type.String({ description: 'ODS code' }),
      practiceName: Type.Optional(Type.String()),
      pcn: Type.Optional(Type.String()),
      clinicalSystem: Type.Optional(Type.String({ description: 'EMIS, SystmOne, ...' })),
    }),
    { default: [], description: 'Which practice and PCN each device serves; unlisted devices take the ODS code from their id (P81001-01 -> P81001)' },
  ),
  icb: Str('ICB', 'Name of the ICB this fleet serves'),
  log: Type.Object(
    {
      level: Type.Union([Type.Literal('debug'), Type.Literal('info'), Type.Literal('warn'), Type.Literal('error'), Type.Literal('silent')], {
        default: 'info',
      }),
    },
    { default: {} },
  ),
});
export type FleetConfig = Static<typeof FleetConfigSchema>;

/** Defaults filled, then every problem with its path (never just the first). */
export function validateFleetConfig(doc: unknown): { ok: true; config: FleetConfig } | { ok: false; problems: { path: string; message: string }[] } {
  const withDefaults = Value.Default(FleetConfigSchema, structuredClone(doc ?? {}));
  const problems = schemaProblems(FleetConfigSchema, withDefaults);
  if (problems.length) return { ok: false, problems };
  return { ok: true, config: withDefaults as FleetConfig };
}

export function loadFleetConfig(path: string | undefined, overrides: Record<string, unknown> = {}): FleetConfig {
  let doc: Record<string, unknown> = {};
  if (path) {
    try {
      doc = parseYaml(readFileSync(path, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new AppError('CONFIG_UNREADABLE', `cannot read ${path}: ${(e as Error).message}`);
    }
  }
  const r = validateFleetConfig({ ...doc, ...overrides });
  if (!r.ok) throw new AppError('CONFIG_INVALID', 'fleet config invalid', { problems: r.problems });
  return r.config;
}
