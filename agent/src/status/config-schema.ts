import { Type } from '@sinclair/typebox';
import { Obj } from '../config/types.js';

export const StatusSection = Obj({
  enabled: Type.Boolean({ default: true }),
  listen: Type.String({ default: '0.0.0.0' }),
  port: Type.Integer({ default: 8080, minimum: 0, maximum: 65535 }),
});
