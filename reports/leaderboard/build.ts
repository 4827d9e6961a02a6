// `leaderboard`: run dirs -> a static site. index.html (sortable, filterable table + charts),
// runs/<id>.html per run, results.json (every run's summary) and runs/<id>.json (each a valid
// `regress --baseline`), with vega, vega-lite and vega-embed copied into assets/.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import { writeJsonAtomic } from '../../results/store.ts';
import { buildCharts } from '../charts/index.ts';
import { configLabel, type NamedChart } from '../charts/spec.ts';
import { primaryScore, tasksOf } from '../metric-choice.ts';
import { loadRun } from '../run.ts';
import { SUITES, suiteOf } from '../suites.ts';
import { summarizeRun, taskStatus } from '../summary.ts';
import type { RunSummary } from '../summary-types.ts';
import { bytesCell, countCell, scoreCell, suiteCell } from './cells.ts';
import { CLIENT_SCRIPT } from './client.ts';
import { esc, jsonScript, page, table, type Row } from './html.ts';

const require = createRequire(import.meta.url);

/** The browser builds, resolved through node_modules so the copied versions match the ones rendering SVG. */
const ASSETS: [string, string][] = [
  ['vega.min.js', 'vega/build/vega.min.js'],
  ['vega-lite.min.js', 'vega-lite/build/vega-lite.min.js'],
  ['vega-embed.min.js', 'vega-embed/build/vega-embed.min.js'],
];

/** `vega/build/x.js` -> its path in node_modules. Resolved from the package's entry point,
 * since the packages' "exports" hide both package.json and build/. */
function packageFile(spec: string): string {
  const [name = '', ...rest] = spec.split('/');
  const entry = require.resolve(name);
  const marker = `${sep}node_modules${sep}${name}${sep}`;
  const at = entry.lastIndexOf(marker);
  if (at < 0) throw new Error(`cannot locate package ${name} (resolved to ${entry})`);
  return join(entry.slice(0, at + marker.length), ...rest);
}

/** A file name for a run id: ids are free text, file names must not be. */
export function runSlug(runId: string, taken: Set<string>): string {
  const base = runId.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^\.+/, '_') || 'run';
  let slug = base;
  for (let i = 2; taken.has(slug); i++) slug = `${base}-${i}`;
  taken.add(slug);
  return slug;
}

function chartsHtml(charts: readonly NamedChart[]): string {
  return `<div class="charts">${charts.map((c) =>
    `<figure class="chart"><figcaption>${esc(c.title)}</figcaption><div data-chart="spec-${esc(c.name)}" id="chart-${esc(c.name)}"></div>${jsonScript(`spec-${c.name}`, c.spec)}</figure>`).join('\n')}</div>`;
}

function leaderboardTable(runs: readonly { summary: RunSummary; slug: string }[], metric: string, prefix: string): string {
  const all = runs.flatMap((r) => r.summary.configs);
  const tasks = tasksOf(all.flatMap((c) => [...c.scores, ...c.failures]));
  const suites = SUITES.filter((s) => tasks.some((t) => suiteOf(t) === s));
  const head = [
    { label: 'model' }, { label: 'version' }, { label: 'PEFT method' },
    { label: 'trainable params', numeric: true }, { label: 'peak memory', numeric: true },
    ...suites.map((s) => ({ label: s, numeric: true })), ...tasks.map((t) => ({ label: t, numeric: true })), { label: 'run' },
  ];
  const rows: Row[] = runs.flatMap(({ summary, slug }) => summary.configs.map((c) => {
    const statuses = new Map(tasks.map((t) => [t, taskStatus(c, t, primaryScore(c.scores, t, metric))]));
    const suiteCells = suites.map((s) => {
      const mine = tasks.filter((t) => suiteOf(t) === s).map((t) => statuses.get(t));
      const values = mine.flatMap((st) => (st?.status === 'ok' ? [st.score.value] : []));
      return suiteCell(values, mine.filter((st) => st?.status === 'failed').length, mine.filter((st) => st?.status !== 'missing').length);
    });
    return {
      data: { version: c.version ?? 'unknown', method: c.peft ?? 'base' },
      cells: [
        { text: c.model }, { text: c.version ?? '–' }, { text: c.peft ?? 'base' },
        countCell(c.trainable_params), bytesCell(c.peak_rss_bytes),
        ...suiteCells,
        ...tasks.map((t) => scoreCell(statuses.get(t) ?? { status: 'missing' }, metric)),
        { text: `<a href="${prefix}runs/${esc(slug)}.html">${esc(summary.run_id)}</a>`, html: true },
      ],
    };
  }));
  return table('leaderboard', head, rows);
}

function selectOf(id: string, label: string, values: string[]): string {
  const opts = [...new Set(values)].sort().map((v) => `<option value="${esc(v)}">${esc(v)}</option>`).join('');
  return `<label>${esc(label)} <select id="${esc(id)}"><option value="">all</option>${opts}</select></label>`;
}

function indexPage(runs: readonly { summary: RunSummary; slug: string }[], metric: string, charts: readonly NamedChart[]): string {
  const configs = runs.flatMap((r) => r.summary.configs);
  const body = `<h1>llama-eval leaderboard</h1>
<p>Scores are ${esc(metric)} where a task has it (else the task's own metric), ± one standard error. FAILED marks a failed cell: it is never counted as a score. Raw data: <a href="results.json">results.json</a>.</p>
<div class="controls">
<label>filter <input id="filter-text" type="search" placeholder="model, method, task…"></label>
${selectOf('filter-version', 'version', configs.map((c) => c.version ?? 'unknown'))}
${selectOf('filter-method', 'method', configs.map((c) => c.peft ?? 'base'))}
<span id="row-count"></span>
</div>
${leaderboardTable(runs, metric, '')}
<h2>Charts</h2>
${chartsHtml(charts)}
<footer>Generated by llama-eval from ${runs.length} run(s). Works offline: scripts are bundled in assets/.</footer>`;
  return page('llama-eval leaderboard', body, '');
}

function runPage(summary: RunSummary, slug: string, metric: string): string {
  const charts = buildCharts([summary], metric);
  const failures = summary.configs.flatMap((c) => c.failures.map((f) => ({ config: configLabel(c.model, c.peft), ...f })));
  const meta = [`run ${summary.run_id}`, summary.time, summary.git_sha && `git ${summary.git_sha}`, summary.package_version && `llama-eval ${summary.package_version}`].filter(Boolean).join(' · ');
  const body = `<p><a href="../index.html">← leaderboard</a></p>
<h1>Run ${esc(summary.run_id)}</h1>
<p>${esc(meta)} · <a href="${esc(slug)}.json">summary JSON</a></p>
${leaderboardTable([{ summary, slug }], metric, '../')}
${failures.length > 0 ? `<h2>Failed cells (${failures.length})</h2>${table('failures', [{ label: 'config' }, { label: 'task' }, { label: 'stage' }, { label: 'error' }],
    failures.map((f) => ({ cells: [{ text: f.config }, { text: f.task ?? '–' }, { text: f.stage ?? '–' }, { text: f.message, className: 'failed' }] })))}` : ''}
${summary.kernels.length > 0 ? `<h2>Kernels</h2>${table('kernels', [{ label: 'kernel' }, { label: 'variant' }, { label: 'shape' }, { label: 'dtype' }, { label: 'median ms', numeric: true }, { label: 'GFLOP/s', numeric: true }, { label: 'GB/s', numeric: true }, { label: 'bound' }, { label: 'roofline', numeric: true }],
    summary.kernels.map((k) => ({ cells: [{ text: k.kernel }, { text: k.variant }, { text: k.shape }, { text: k.dtype }, { text: k.median_ms.toFixed(3), sort: k.median_ms }, { text: k.gflops.toFixed(1), sort: k.gflops }, { text: k.gbps.toFixed(1), sort: k.gbps }, { text: k.bound }, { text: `${(k.roofline_fraction * 100).toFixed(1)}%`, sort: k.roofline_fraction }] })))}` : ''}
<h2>Charts</h2>
${chartsHtml(charts)}`;
  return page(`llama-eval run ${summary.run_id}`, body, '../');
}

export interface LeaderboardOutput {
  files: string[];
  summaries: RunSummary[];
}

export function writeLeaderboard(runDirs: readonly string[], outDir: string, options: { metric: string }): LeaderboardOutput {
  const summaries = runDirs.map((d) => {
    const run = loadRun(d);
    return summarizeRun(run.records, run.problems);
  });
  const taken = new Set<string>();
  const runs = summaries.map((summary) => ({ summary, slug: runSlug(summary.run_id, taken) }));
  const files: string[] = [];
  const write = (rel: string, data: string) => {
    mkdirSync(dirname(join(outDir, rel)), { recursive: true });
    writeFileSync(join(outDir, rel), data);
    files.push(rel);
  };
  mkdirSync(join(outDir, 'assets'), { recursive: true });
  for (const [name, spec] of ASSETS) {
    copyFileSync(packageFile(spec), join(outDir, 'assets', name));
    files.push(`assets/${name}`);
  }
  write('assets/leaderboard.js', CLIENT_SCRIPT);
  write('index.html', indexPage(runs, options.metric, buildCharts(summaries, options.metric)));
  for (const { summary, slug } of runs) {
    write(`runs/${slug}.html`, runPage(summary, slug, options.metric));
    writeJsonAtomic(join(outDir, 'runs', `${slug}.json`), summary);
    files.push(`runs/${slug}.json`);
  }
  writeJsonAtomic(join(outDir, 'results.json'), summaries);
  files.push('results.json');
  // GitHub Pages runs Jekyll by default, which skips nothing we ship but costs a build; opt out.
  write('.nojekyll', '');
  return { files, summaries };
}
