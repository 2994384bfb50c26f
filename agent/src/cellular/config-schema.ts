import { Type } from '@sinclair/typebox';
import { Obj } from '../config/types.js';

export const CellularSection = Obj({
  enabled: Type.Boolean({ default: true }),
  uplink: Type.String({ default: '4g', description: 'Name of the cellular uplink in `uplinks`' }),
  allowanceMb: Type.Integer({ default: 50_000, minimum: 0, description: 'SIM data allowance per billing cycle' }),
  billingDay: Type.Integer({ default: 1, minimum: 1, maximum: 28 }),
});

export const WifiSection = Obj({
  enabled: Type.Boolean({ default: false }),
  uplink: Type.String({ default: 'wifi' }),
  ssid: Type.String({ default: '' }),
  passphraseFile: Type.Optional(Type.String()),
});
