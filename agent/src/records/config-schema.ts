import { Type } from '@sinclair/typebox';
import { Obj } from '../config/types.js';

export const RecordsSection = Obj({
  enabled: Type.Boolean({ default: false }),
});
