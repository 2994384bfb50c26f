import { Type } from '@sinclair/typebox';
import { Ms, Obj } from '../config/types.js';

export const FailoverSection = Obj({
  holdDownMs: Ms(60_000, 'Primary must be clean this long before traffic fails back'),
  maxHoldDownMs: Ms(900_000, 'Hold-down doubles per flap up to this'),
  maxFailbacksPerHour: Type.Integer({ default: 2, minimum: 0 }),
  lan: Obj({
    interface: Type.String({ default: 'lan0' }),
    subnet: Type.String({ default: '192.168.50.0/24' }),
  }),
});
