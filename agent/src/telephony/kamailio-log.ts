import type { Clock } from '../../../common/clock.js';
import type { Logger } from '../../../common/log.js';

/**
 * kamailio's own ERROR/WARNING lines into the agent log, made safe for an SD card and for patient
 * privacy: every line is cut before any copied message text (`[...]`, `<...>`, SIP URIs: numbers
 * dialled, display names), and at most `maxPerWindow` lines per window reach the log. Malformed
 * SIP makes kamailio log several lines per datagram, so a flood of junk must not become a flood
 * of writes; what was held back is counted in one summary line per window.
 */
export class KamailioLog {
  private windowStart = 0;
  private count = 0;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly maxPerWindow = 20,
    private readonly windowMs = 60_000,
  ) {}

  line(l: string): void {
    if (!/\b(ERROR|CRITICAL|ALERT|WARNING)\b/.test(l)) return;
    const now = this.clock.monotonic();
    if (now - this.windowStart >= this.windowMs) {
      if (this.suppressed > 0) this.log.warn('kamailio lines suppressed (rate limit)', { suppressed: this.suppressed, windowMs: this.windowMs });
      this.windowStart = now;
      this.count = 0;
      this.suppressed = 0;
    }
    if (++this.count > this.maxPerWindow) {
      this.suppressed++;
      return;
    }
    this.log.warn('kamailio', { line: redactKamailioLine(l) });
  }
}

/**
 * " 1(26661) ERROR: <core> [core/x.c:98]: f(): bad header field [From: Mrs Smith" -> "... bad header
 * field …": the level, module, file and function are kept; the message stops at copied SIP text.
 */
export function redactKamailioLine(l: string): string {
  const m = /^(.*?\b(?:ERROR|WARNING|CRITICAL|ALERT|NOTICE|INFO):\s*(?:(?:<[^>]*>|\w+):?\s*)?(?:\[[^\]]*\]:\s*)?(?:\w+\(\):\s*)?)(.*)$/.exec(l);
  const head = m ? m[1]! : '';
  const msg = (m ? m[2]! : l).replace(/sip:[^\s>;]+/g, 'sip:…').replace(/[[<"'].*$/, '…');
  return (head + msg).slice(0, 300);
}
