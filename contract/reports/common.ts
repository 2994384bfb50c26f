import { Type, type TSchema } from '@sinclair/typebox';

export const Nullable = <T extends TSchema>(t: T, description?: string) => Type.Union([t, Type.Null()], description ? { description } : {});
export const At = (description = 'Epoch milliseconds') => Type.Integer({ description });
/** Plain lines for `surgery-edge status` and the status page's detail view (never patient data). */
export const Lines = Type.Optional(
  Type.Array(Type.String(), { description: 'Plain lines for `surgery-edge status` and the detail view; telemetry leaves them out on 4G' }),
);
