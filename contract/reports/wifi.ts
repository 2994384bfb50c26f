import { Type, type Static } from '@sinclair/typebox';
import { Lines, Nullable } from './common.js';

export const WifiReportSchema = Type.Object(
  { ssid: Nullable(Type.String()), connected: Type.Boolean(), rssi: Nullable(Type.Number()), lines: Lines },
  { $id: 'report-wifi.json', title: 'wifi: the backup Wi-Fi link' },
);
export type WifiReport = Static<typeof WifiReportSchema>;
