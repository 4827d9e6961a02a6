// HTML building blocks for the static site: escaping, tables, and the page shell that loads the
// bundled vega, vega-lite and vega-embed from assets/ (never a CDN: the site must work offline
// and on GitHub Pages).

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

/** JSON inside <script type="application/json">: "<" escaped so "</script>" in data cannot end it. */
export function jsonScript(id: string, value: unknown): string {
  return `<script type="application/json" id="${esc(id)}">${JSON.stringify(value).replace(/</g, '\\u003c')}</script>`;
}

export interface Cell {
  text: string;
  /** Sort key; null sorts last in both directions (failed, missing). */
  sort?: number | string | null;
  className?: string;
  title?: string;
  html?: boolean;
}

export interface Row {
  cells: Cell[];
  /** data-* attributes the filters read (data-version, data-method). */
  data?: Record<string, string>;
}

export function table(id: string, head: readonly { label: string; numeric?: boolean }[], rows: readonly Row[]): string {
  const th = head.map((h, i) => `<th data-col="${i}"${h.numeric ? ' data-numeric="1"' : ''} tabindex="0" role="columnheader" aria-sort="none">${esc(h.label)}</th>`).join('');
  const tr = rows.map((r) => `<tr${Object.entries(r.data ?? {}).map(([k, v]) => ` data-${esc(k)}="${esc(v)}"`).join('')}>${r.cells.map((c) => {
    const attrs = [
      c.sort === undefined ? '' : ` data-sort="${c.sort === null ? '' : esc(String(c.sort))}"`,
      c.className ? ` class="${esc(c.className)}"` : '',
      c.title ? ` title="${esc(c.title)}"` : '',
    ].join('');
    return `<td${attrs}>${c.html ? c.text : esc(c.text)}</td>`;
  }).join('')}</tr>`).join('\n');
  return `<table id="${esc(id)}" class="sortable"><thead><tr>${th}</tr></thead><tbody>\n${tr}\n</tbody></table>`;
}

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5rem;color:#1b1f24}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #d0d7de;padding:.3rem .55rem;text-align:left}
th{background:#f6f8fa;cursor:pointer;user-select:none}th[aria-sort=ascending]::after{content:" ▲"}th[aria-sort=descending]::after{content:" ▼"}
td[data-sort]{text-align:right;font-variant-numeric:tabular-nums}
.failed{color:#b71c1c;font-weight:600;background:#fdecea}.missing{color:#888}
.controls{display:flex;gap:.8rem;flex-wrap:wrap;align-items:center;margin:.8rem 0}
.charts{display:flex;flex-wrap:wrap;gap:1.5rem}.chart{min-width:320px}
footer{margin-top:2rem;color:#666;font-size:12px}`;

export function page(title: string, body: string, assetPrefix: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
<script src="${assetPrefix}assets/vega.min.js"></script>
<script src="${assetPrefix}assets/vega-lite.min.js"></script>
<script src="${assetPrefix}assets/vega-embed.min.js"></script>
</head>
<body>
${body}
<script src="${assetPrefix}assets/leaderboard.js"></script>
</body>
</html>
`;
}
