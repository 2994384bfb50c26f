import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Health } from '../../../agent/src/core/capability.js';
import { renderCards } from '../../../agent/src/status/cards.js';
import { deriveState } from '../../../agent/src/status/state.js';

const tel = (details: Record<string, unknown>, status: Health['status'] = 'ok', summary = 's'): Record<string, Health> => ({
  telephony: { status, summary, details },
});

describe('status page: the phones card in words reception understands', () => {
  it('cloud mode: normal, phones connected, calls in progress, outside calls and 999 via the cloud system', () => {
    const html = renderCards(
      tel({ mode: 'cloud', registered: 12, callsInProgress: 3, pbxReachable: true, outsideCalls: 'pbx', emergencyRoute: 'pbx-then-trunk' }),
      null,
    );
    assert.match(html, /<h2 id="c-telephony">Phones /);
    assert.match(html, /Normal - calls go through the cloud phone system/);
    assert.match(html, /Desk phones connected:<\/strong> 12 phones/);
    assert.match(html, /Calls in progress:<\/strong> 3 calls/);
    assert.match(html, /999 \/ 112:<\/strong> yes \(cloud phone system, backup line if it fails\)/);
    assert.doesNotMatch(html, /id="c-telephony">Telephony/, 'no second, generic card');
  });
  it('survivable mode says BACKUP, and says plainly when 999 is not available from desk phones', () => {
    const withTrunk = renderCards(
      tel({ mode: 'survivable', registered: 1, callsInProgress: 1, pbxReachable: false, outsideCalls: 'trunk', emergencyRoute: 'trunk' }, 'degraded'),
      null,
    );
    assert.match(withTrunk, /BACKUP - the cloud phone system cannot be reached/);
    assert.match(withTrunk, /1 phone<\/li>/);
    assert.match(withTrunk, /1 call<\/li>/);
    assert.match(withTrunk, /Outside calls:<\/strong> yes, through the backup line/);
    const none = renderCards(
      tel({ mode: 'survivable', registered: 2, callsInProgress: 0, pbxReachable: false, outsideCalls: 'none', emergencyRoute: 'none' }, 'degraded'),
      null,
    );
    assert.match(none, /999 \/ 112:<\/strong> NOT AVAILABLE from desk phones - use a mobile/);
  });
  it('the headline notes carry the phone backup state', () => {
    const st = deriveState(tel({ mode: 'survivable', emergencyRoute: 'none' }, 'degraded'));
    assert.ok(st.notes.includes('Phones on local backup: calls between desk phones only, 999 NOT from desk phones'), JSON.stringify(st));
  });
});
