import { Type, type TSchema } from '@sinclair/typebox';

/** Small helpers so section schemas read like a spec: strict objects with defaults everywhere. */
export const Obj = <P extends Record<string, TSchema>>(props: P, description?: string) =>
  Type.Object(props, { additionalProperties: false, default: {}, ...(description ? { description } : {}) });

export const Ms = (def: number, description: string, min = 0) => Type.Integer({ default: def, minimum: min, description });

export const Str = (def: string, description: string) => Type.String({ default: def, description });
export const Bool = (def: boolean, description: string) => Type.Boolean({ default: def, description });
