import type { Health } from '../core/capability.js';
import type { ClaimPhase, EnrolmentReport } from '../../../contract/reports/index.js';
import { escapeHtml as e } from '../web/html.js';

const STATE: Record<ClaimPhase, string> = {
  preparing: "Preparing this box's key",
  submitting: 'Contacting the ICB fleet',
  waiting: 'Waiting for the ICB engineer to claim this box',
  installing: 'Claimed: installing the certificate',
  claimed: 'Claimed: connecting to the ICB',
  error: 'Cannot reach the ICB fleet yet',
};

/**
 * The claim code of a box that is not enrolled yet (enrolment details from claimer.ts), where the
 * page says "Not enrolled": the ICB engineer types it into the fleet's "Claim a box" page.
 * Empty when the box is enrolled or has no code.
 */
export function claimCard(h: Health<EnrolmentReport> | undefined): string {
  const d = h?.details;
  if (!d || d.enrolled || !d.claimCode) return '';
  const host = (() => {
    try {
      return new URL(d.claimUrl ?? '').host;
    } catch {
      return d.claimUrl ?? '';
    }
  })();
  return `<section class="card" id="claim" aria-labelledby="claim-h"><h2 id="claim-h">Set up by the ICB</h2>
<p>Give this claim code to your ICB engineer:</p>
<p class="claim-code" style="font:700 2rem/1.2 monospace;letter-spacing:.12em;margin:.3rem 0" id="claim-code">${e(d.claimCode)}</p>
<ul><li><strong>Status:</strong> ${e(d.claimState ? STATE[d.claimState] : '')}</li>
<li><strong>Box fingerprint:</strong> <code id="claim-fingerprint">${e(d.claimKeyFingerprint ?? '')}</code></li>
<li><strong>ICB fleet:</strong> ${e(host)}</li>${d.claimError ? `<li><strong>Last problem:</strong> ${e(d.claimError)}</li>` : ''}
<li>The code works once and expires after 24 hours; a new one then appears here.</li></ul></section>`;
}
