// The leaderboard's browser script, shipped as assets/leaderboard.js. Plain ES2017 with no
// imports so it runs from file:// and GitHub Pages alike. It (1) sorts any table.sortable by a
// clicked header, keeping empty keys (failed / missing) last, (2) filters rows by text and the
// version / method selects, and (3) embeds every <div data-chart> spec with vega-embed as SVG.
export const CLIENT_SCRIPT = String.raw`(function () {
  'use strict';
  function sortTable(table, col, numeric, dir) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var ca = a.cells[col], cb = b.cells[col];
      var ka = ca.hasAttribute('data-sort') ? ca.getAttribute('data-sort') : ca.textContent;
      var kb = cb.hasAttribute('data-sort') ? cb.getAttribute('data-sort') : cb.textContent;
      if (ka === '' && kb === '') return 0;
      if (ka === '') return 1;
      if (kb === '') return -1;
      var c = numeric ? Number(ka) - Number(kb) : String(ka).localeCompare(String(kb));
      return dir * c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      function go() {
        var dir = th.getAttribute('aria-sort') === 'descending' ? 1 : -1;
        Array.prototype.forEach.call(table.tHead.rows[0].cells, function (o) { o.setAttribute('aria-sort', 'none'); });
        th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending');
        sortTable(table, Number(th.getAttribute('data-col')), th.hasAttribute('data-numeric'), dir);
      }
      th.addEventListener('click', go);
      th.addEventListener('keydown', function (e) { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); go(); } });
    });
  });
  var text = document.getElementById('filter-text');
  var version = document.getElementById('filter-version');
  var method = document.getElementById('filter-method');
  var board = document.getElementById('leaderboard');
  function applyFilter() {
    if (!board) return;
    var q = text ? text.value.trim().toLowerCase() : '';
    var v = version ? version.value : '';
    var m = method ? method.value : '';
    var shown = 0;
    Array.prototype.forEach.call(board.tBodies[0].rows, function (r) {
      var ok = (!q || r.textContent.toLowerCase().indexOf(q) >= 0) &&
        (!v || r.getAttribute('data-version') === v) && (!m || r.getAttribute('data-method') === m);
      r.hidden = !ok;
      if (ok) shown++;
    });
    var count = document.getElementById('row-count');
    if (count) count.textContent = shown + ' of ' + board.tBodies[0].rows.length + ' rows';
  }
  [text, version, method].forEach(function (el) { if (el) el.addEventListener('input', applyFilter); });
  applyFilter();
  Array.prototype.forEach.call(document.querySelectorAll('[data-chart]'), function (el) {
    var data = document.getElementById(el.getAttribute('data-chart'));
    if (!data || typeof vegaEmbed !== 'function') return;
    vegaEmbed(el, JSON.parse(data.textContent), { renderer: 'svg', actions: false })
      .then(function () { el.setAttribute('data-rendered', '1'); })
      .catch(function (e) { el.textContent = 'chart failed: ' + e; console.error(e); });
  });
})();
`;
