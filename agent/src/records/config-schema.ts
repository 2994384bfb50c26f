import { Type } from '@sinclair/typebox';
import { Bool, Ms, Obj, Str } from '../config/types.js';
import { CaptureSection } from './capture-config.js';

/**
 * Records cache config. GP Connect identifies the consumer through the Spine Secure Proxy headers
 * (Ssp-From/To ASIDs) and the per-request JWT's requesting_* claims; those come from here.
 */
const GpConnect = Obj(
  {
    baseUrl: Str('', 'Provider FHIR base URL (the nhsMhsEndPoint), e.g. https://provider.example/gpconnect/fhir'),
    sspUrl: Str('', 'Spine Secure Proxy prefix; when set requests go to <sspUrl>/<baseUrl>/...; empty: direct'),
    fromAsid: Str('', 'Ssp-From: this consumer system ASID'),
    toAsid: Str('', 'Ssp-To: the provider system ASID'),
    jwtIssuer: Str('https://surgery-edge.nhs.invalid', 'JWT iss: the requesting system URI'),
    organizationOds: Str('', 'requesting_organization ODS code (empty: site.odsCode)'),
    organizationName: Str('', 'requesting_organization name (empty: site.practiceName)'),
    practitionerId: Str('surgery-edge', 'requesting_practitioner id and JWT sub (local system user id)'),
    practitionerSdsUserId: Str('', 'requesting_practitioner SDS user id, when the service has one'),
    practitionerFamily: Str('Continuity', 'requesting_practitioner family name'),
    practitionerGiven: Str('Service', 'requesting_practitioner given name'),
    deviceName: Str('surgery-edge', 'requesting_device model/name'),
    includeAppointments: Bool(true, "Also fetch each patient's appointments (Appointment Management)"),
    tlsCaPath: Str('', 'PEM CA for the provider/SSP (empty: system CAs)'),
  },
  'GP Connect (STU3) adapter for patient summaries',
);

const DayList = Obj(
  {
    source: Type.Union([Type.Literal('fhir'), Type.Literal('file')], { default: 'fhir', description: 'Where the day list comes from' }),
    fhirBaseUrl: Str('', 'FHIR R4 base URL serving Appointment?date=YYYY-MM-DD (source=fhir)'),
    bearerToken: Str('', 'Optional bearer token for the FHIR R4 day-list endpoint'),
    filePath: Str('', 'File drop written by the practice system (source=file); {date} is replaced by YYYY-MM-DD'),
    fileFormat: Type.Union([Type.Literal('auto'), Type.Literal('json'), Type.Literal('csv')], { default: 'auto' }),
  },
  'The day list source: GP Connect has no "all appointments of a day" interaction',
);

export const RecordsSection = Obj({
  enabled: Type.Boolean({ default: false }),
  dbPath: Str('', 'Encrypted cache database (empty: <stateDir>/records.db)'),
  keyPath: Str('', 'Wrapped data key file (empty: <stateDir>/records.key)'),
  timeZone: Str(
    'Europe/London',
    'The practice time zone (IANA name): day boundaries of the day list and every time the box shows; the agent makes it its own local zone',
  ),
  workingDays: Type.Array(Type.Integer({ minimum: 0, maximum: 6 }), { default: [1, 2, 3, 4, 5], description: 'Working weekdays (0=Sunday)' }),
  dayListIntervalMs: Type.Integer({
    default: 15 * 60_000,
    minimum: 10_000,
    maximum: 15 * 60_000,
    description: 'Day list refresh interval (at most 15 minutes)',
  }),
  summaryMaxAgeMs: Ms(60 * 60_000, "Re-fetch a booked patient's summary when older than this", 0),
  staleAfterMs: Ms(45 * 60_000, 'Health and viewer call the cache stale after this without a complete sync', 60_000),
  concurrency: Type.Integer({ default: 6, minimum: 1, maximum: 32, description: 'Upstream requests in flight during sync' }),
  requestTimeoutMs: Ms(30_000, 'One upstream request', 1000),
  retries: Type.Integer({ default: 2, minimum: 0, maximum: 10, description: 'Retries per patient on a transient upstream error' }),
  tpm: Type.Union([Type.Literal('auto'), Type.Literal('off')], {
    default: 'auto',
    description:
      'auto: when a TPM 2.0 is present (/dev/tpmrm0), also seal the data key to it (PCR policy) so the cache unlocks itself after a reboot; the ' +
      'passphrase stays the recovery path',
  }),
  tpmTcti: Str('', 'TPM2TOOLS_TCTI override (empty: device:/dev/tpmrm0); tests use the swtpm simulator'),
  tpmPcrs: Str('sha256:0,2,4,7', 'PCR selection the sealed key is bound to (firmware, option ROMs, boot loader, secure boot state)'),
  retention: Obj(
    {
      auditDays: Type.Integer({
        default: 2920,
        minimum: 365,
        description: 'Audit entries older than this are purged (the chain stays verifiable from a checkpoint). Default 8 years; set by the practice IG lead',
      }),
      cacheMaxAgeHours: Type.Integer({
        default: 72,
        minimum: 1,
        maximum: 24 * 14,
        description: 'Cached patient data fetched longer ago than this is deleted even if sync has stopped (normally sync keeps only two working days)',
      }),
    },
    'Retention limits (docs/clinical-safety.md, DPIA inputs)',
  ),
  gpconnect: GpConnect,
  dayList: DayList,
  capture: CaptureSection,
});
