import { Type, type Static } from '@sinclair/typebox';
import { Lines, Nullable } from './common.js';

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
    lines: Lines,
  },
  { $id: 'report-enrolment.json', title: 'enrolment: the device identity (certificate) for the ICB' },
);
export type EnrolmentReport = Static<typeof EnrolmentReportSchema>;
