/**
 * The status page's only script, served from /assets/status.js (CSP script-src 'self', no inline
 * script). It swaps in server-rendered HTML pushed over server-sent events; EventSource reconnects
 * by itself after the agent restarts. Only changed regions are replaced so a screen reader's
 * aria-live region announces real changes, not every refresh.
 */
export const STATUS_JS = `(function () {
  'use strict';
  var st = document.getElementById('state'), notes = document.getElementById('notes'),
      cards = document.getElementById('cards'), upd = document.getElementById('updated');
  if (!st || !window.EventSource) return;
  var last = {};
  function put(el, key, html) { if (el && last[key] !== html) { el.innerHTML = html; last[key] = html; } }
  function apply(d) {
    if (st.getAttribute('data-level') !== d.level) { st.className = 'state s-' + d.level; st.setAttribute('data-level', d.level); }
    put(st, 'state', d.stateHtml);
    put(notes, 'notes', d.notesHtml);
    put(cards, 'cards', d.cardsHtml);
    if (upd) upd.textContent = 'Updated ' + d.updated;
  }
  last.state = st.innerHTML; last.notes = notes ? notes.innerHTML : ''; last.cards = cards ? cards.innerHTML : '';
  var es = new EventSource('/api/events');
  es.addEventListener('status', function (ev) { try { apply(JSON.parse(ev.data)); } catch (e) { /* ignore a bad frame */ } });
  // data-live: the stream is open (tests wait on it instead of sleeping).
  es.addEventListener('open', function () { document.body.removeAttribute('data-stale'); document.body.setAttribute('data-live', '1'); });
  es.addEventListener('error', function () {
    document.body.setAttribute('data-stale', '1'); document.body.removeAttribute('data-live');
    if (upd) upd.textContent = 'Lost contact with the appliance - retrying…';
  });
})();
`;

export const STATUS_CSS = `
.state{display:flex;gap:.5em;align-items:center;font-size:1.55rem;font-weight:700;padding:14px 18px;border-radius:10px;border:3px solid;margin:0 0 6px}
.state .icon{display:inline-flex;justify-content:center;align-items:center;min-width:1.6em;height:1.6em;border-radius:50%;color:#fff;font-size:1.1em}
.s-normal{background:#e7f5ea;color:#0b5321;border-color:#1e7e34}.s-normal .icon{background:#1e7e34}
.s-attention{background:#fff5d6;color:#4d3800;border-color:#a87600}.s-attention .icon{background:#7a5600}
.s-backup{background:#ffeeda;color:#5e3200;border-color:#c05f00}.s-backup .icon{background:#a14f00}
.s-offline{background:#fde8ea;color:#7d0c11;border-color:#a4161a}.s-offline .icon{background:#a4161a}
.s-unknown{background:#eceff3;color:#2b2f36;border-color:#6b7280}.s-unknown .icon{background:#4b5563}
.s-unenrolled,.s-setup{background:#e8f0fb;color:#0b2f5e;border-color:#0b4f9c}.s-unenrolled .icon,.s-setup .icon{background:#0b4f9c}
.state .body{display:flex;flex-wrap:wrap;align-items:baseline;gap:.2em .6em;min-width:0}.state .text{overflow-wrap:anywhere}
.state a.act{font-size:1.05rem;background:#0b4f9c;color:#fff;padding:4px 14px;border-radius:6px;text-decoration:none}
.state .todo{flex-basis:100%;font-size:1rem;font-weight:400}
.outages{margin:0;padding-left:1.2em}
#notes{margin:0 0 12px;padding-left:1.2em}
#cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:12px}
#cards .card{margin:0;min-width:0}
#cards .wide{grid-column:1/-1}.scroll{overflow-x:auto}
h2{font-size:1.1rem;margin:.1em 0 .5em}
.badge{font-size:.8rem;padding:1px 8px;border-radius:10px;border:1px solid;vertical-align:middle}
.b-ok{color:#0b5321}.b-degraded{color:#5e3200}.b-failed{color:#7d0c11}
.st-up{color:#0b5321;font-weight:700}.st-degraded{color:#5e3200;font-weight:700}.st-slow{color:#5e3200;font-weight:700}.st-down{color:#7d0c11;font-weight:700}
body[data-stale] #updated{color:#7d0c11;font-weight:700}
.actions form{display:inline-block;margin:0 12px 8px 0;vertical-align:top}
#actions{margin-top:12px}label.inline{display:inline;font-weight:400}
.flash{background:#e8f0fb;border:1px solid #0b4f9c;padding:8px 12px;border-radius:6px}
`;
