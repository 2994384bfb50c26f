import { Type, type Static } from '@sinclair/typebox';
import { Lines, Nullable } from './common.js';

export const ClaimPhaseSchema = Type.Union((['preparing', 'submitting', 'waiting', 'installing', 'claimed', 'error'] as const).map((s) => Type.Literal(s)));
export type ClaimPhase = Static<typeof ClaimPhaseSchema>;

export const EnrolmentReportSchema = Type.Object(
  {
    enrolled: Type.Boolean(),
    required: Type.Boolean(),
    reason: Nullable(Type.String(), 'Why not enrolled, in words an ICB engineer acts on'),
    deviceId: Type.String(),
    subject: Nullable(Type.String()),
    issuer: Nullable(Type.String()),
    notAfter: Nullable(Type.Integer()),
    tpmSealed: Type.Optional(Type.Boolean()),
    // Claiming (added within v1): present only while the box is unenrolled and enrolment.claimUrl is set.
    claimCode: Type.Optional(Nullable(Type.String(), 'One-time claim code shown on the LAN page and the box label (XXXX-XXXX)')),
    claimUrl: Type.Optional(Type.String({ description: 'The fleet enrolment endpoint the box polls' })),
    claimState: Type.Optional(ClaimPhaseSchema),
    claimExpiresAt: Type.Optional(Nullable(Type.Integer())),
    claimKeyFingerprint: Type.Optional(Nullable(Type.String(), 'SHA-256 of the box public key, for the engineer to compare')),
    claimError: Type.Optional(Nullable(Type.String())),
    lines: Lines,
  },
  { $id: 'report-enrolment.json', title: 'enrolment: the device identity (certificate) for the ICB' },
);
export type EnrolmentReport = Static<typeof EnrolmentReportSchema>;
