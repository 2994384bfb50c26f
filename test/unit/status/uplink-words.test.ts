import assert from 'node:assert/strict';
import { it } from 'node:test';
import { renderCards } from '../../../agent/src/status/cards.js';
import { failoverHealth } from './fixtures.js';

it('the connections card names uplinks by label and says Slow and DNS not answering in words', () => {
  const h = failoverHealth('wan', Date.parse('2026-11-27T10:42:00Z'), 'slow' as never, 'degraded');
  const d = h.details as { uplinks: Record<string, unknown>[] };
  d.uplinks[0] = { ...d.uplinks[0], label: 'BT broadband', latencyMs: 512 };
  d.uplinks[1] = { ...d.uplinks[1], label: 'EE 4G', dns: 'failing' };
  const html = renderCards({ failover: h }, null, () => '10:42');
  assert.match(html, /<th scope="row">BT broadband <strong>\(in use\)<\/strong>/);
  assert.match(html, /<span class="st st-slow">Slow<\/span><\/td><td>512 ms/);
  assert.match(html, /<th scope="row">EE 4G<br>[\s\S]*?<span class="st st-degraded">Unreliable<\/span>[\s\S]*?<strong>DNS not answering<\/strong>/);
});
