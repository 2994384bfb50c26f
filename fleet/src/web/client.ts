/**
 * The dashboard's one script, served as /static/fleet.js (CSP script-src 'self': no inline script
 * anywhere). Every page works without it; it only adds: the live device list (server-sent events,
 * live.ts), header labels on table cells for the stacked phone layout, and "select all" on the
 * alerts page. It writes only HTML the server rendered and escaped (the same fragments as the page).
 */
export const CLIENT_JS = `'use strict';
(function () {
  function label(root) {
    root.querySelectorAll('table').forEach(function (t) {
      var heads = t.tHead ? Array.prototype.map.call(t.tHead.rows[0] ? t.tHead.rows[0].cells : [], function (c) { return c.textContent.trim(); }) : [];
      if (!heads.length) return;
      Array.prototype.forEach.call(t.tBodies, function (b) {
        Array.prototype.forEach.call(b.rows, function (r) {
          Array.prototype.forEach.call(r.cells, function (c, i) {
            if (!c.hasAttribute('data-label') && heads[i] && r.cells.length === heads.length) c.setAttribute('data-label', heads[i]);
          });
        });
      });
    });
  }
  function live(el) {
    if (!window.EventSource) return;
    var es = new EventSource(el.getAttribute('data-live'));
    es.addEventListener('update', function (ev) {
      var parts = JSON.parse(ev.data);
      Object.keys(parts).forEach(function (id) {
        var target = document.getElementById(id);
        if (target && target.innerHTML !== parts[id]) target.innerHTML = parts[id];
      });
      label(document);
      el.textContent = 'updated ' + new Date().toLocaleTimeString('en-GB', { timeZone: 'Europe/London' });
      el.setAttribute('data-updates', String(Number(el.getAttribute('data-updates') || '0') + 1));
    });
    es.addEventListener('signed-out', function () { es.close(); location.reload(); });
    es.onerror = function () { el.textContent = 'reconnecting...'; };
  }
  function selectAll() {
    var all = document.getElementById('select-all');
    if (!all) return;
    all.hidden = false;
    all.querySelector('input').addEventListener('change', function (ev) {
      document.querySelectorAll('input[form="bulk"][type=checkbox]').forEach(function (c) { c.checked = ev.target.checked; });
    });
  }
  document.addEventListener('DOMContentLoaded', function () {
    label(document);
    var el = document.querySelector('[data-live]');
    if (el) live(el);
    selectAll();
  });
})();
`;
