/**
 * The CPU side of a node flag that saves memory (--max-opt, --jitless): hot pure-JS work timed in
 * one process, ms per operation. Run once per flag set, e.g.
 *   for f in "" --max-opt=2 --max-opt=1 --jitless; do
 *     scripts/node --max-semi-space-size=1 --optimize-for-size $f --import tsx test/bench/node-flags-cpu.ts; done
 * dayListMs: compile and render a 600-row records day list page (Intl time formatting, escaping);
 * configParseValidateMs: parse image/seed-config.yaml (yaml) and validate it (TypeBox). make bench-memory
 * gives the steady-state RSS and CPU; see image/systemd/surgery-edge.service and docs/architecture.md.
 */
import { compileDayList } from '../../agent/src/records/viewer/pages.js';
import { validateConfig, parseConfigText } from '../../agent/src/config/load.js';
import { readFileSync } from 'node:fs';
const entries = Array.from({ length: 600 }, (_, i) => ({
  appointmentId: `a${i}`,
  date: '2026-11-27',
  start: Date.UTC(2026, 10, 27, 8) + i * 60000,
  end: null,
  clinicianId: `c${i % 30}`,
  clinicianName: `Dr Clinician ${i % 30} & <Partner>`,
  patientId: i % 7 ? `p${i}` : null,
  patientName: `Patient "${i}" O'Brien`,
  nhsNumber: '9434765919',
  dob: '1970-01-01',
  status: 'booked',
  type: 'GP consultation',
  location: null,
  hasSummary: i % 3 !== 0,
  withheld: i % 50 === 0,
  fetchedAt: 0,
}));
const v = {
  date: '2026-11-27',
  clinicianId: '',
  clinicians: Array.from({ length: 30 }, (_, i) => ({ id: `c${i}`, name: `Dr ${i}`, appointments: 20 })),
  entries,
  dates: ['2026-11-27'],
  role: 'admin',
  timeZone: 'Europe/London',
};
const arrived = new Set(['a5', 'a9']);
let k = 0;
const time = (op: () => unknown) => {
  for (let i = 0; i < 50; i++) op();
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < 3000) {
    op();
    n++;
  }
  return Math.round((3000 / n) * 1000) / 1000;
};
const text = readFileSync('image/seed-config.yaml', 'utf8');
const dayListMs = time(() => compileDayList(v).render('csrf-token', () => `key-${k++}`, arrived).length);
const configParseValidateMs = time(() => validateConfig(parseConfigText(text)).ok);
console.log(
  JSON.stringify({ flags: process.execArgv.filter((a) => /^--(max-opt|jitless)/.test(a)).join(' ') || 'unit flags', dayListMs, configParseValidateMs }),
);
