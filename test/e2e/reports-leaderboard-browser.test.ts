// The leaderboard in a real browser (Debian's chromium via playwright-core), served over HTTP as
// GitHub Pages would serve it, with no network beyond localhost: the page loads with no console
// errors, clicking a header sorts, filters hide rows, failed cells read FAILED, charts are SVG.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeLeaderboard } from '../../reports/leaderboard/build.ts';
import { FIXTURES_DIR } from '../fixtures/runs/generate.ts';

const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => p && existsSync(p));
if (!CHROMIUM) {
  console.warn('reports-leaderboard-browser: SKIPPED, no chromium binary (apt-get install -y chromium, or set CHROMIUM_PATH)');
}

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.json': 'application/json' };

describe.skipIf(!CHROMIUM)('leaderboard in chromium', () => {
  const site = mkdtempSync(join(tmpdir(), 'reports-site-'));
  let server: Server;
  let base = '';
  let browser: Browser;

  beforeAll(async () => {
    writeLeaderboard([join(FIXTURES_DIR, 'sweep'), join(FIXTURES_DIR, 'nightly-base')], site, { metric: 'acc' });
    server = createServer((req, res) => {
      const rel = normalize(decodeURIComponent((req.url ?? '/').split('?')[0] ?? '/')).replace(/^(\.\.[/\\])+/, '');
      let file = join(site, rel);
      if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
      if (!existsSync(file)) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
    rmSync(site, { recursive: true, force: true });
  });

  /** Opens a page, recording console errors, page errors and any request that left localhost. */
  async function open(path: string, origin = base): Promise<{ page: Page; problems: string[] }> {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`); });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('request', (r) => { if (!r.url().startsWith(origin) && !r.url().startsWith('data:')) problems.push(`external request: ${r.url()}`); });
    await page.goto(`${origin}${path}`);
    await page.waitForFunction(() => [...document.querySelectorAll('[data-chart]')].every((el) => el.hasAttribute('data-rendered')), undefined, { timeout: 20_000 });
    return { page, problems };
  }

  const column = (page: Page, label: string) => page.evaluate((l) => {
    const table = document.getElementById('leaderboard') as HTMLTableElement;
    const i = [...table.tHead!.rows[0]!.cells].findIndex((c) => c.textContent?.trim() === l);
    return [...table.tBodies[0]!.rows].filter((r) => !r.hidden).map((r) => r.cells[i]!.textContent!.trim());
  }, label);

  it('loads with no console errors and renders every chart as SVG', async () => {
    const { page, problems } = await open('/');
    expect(problems).toEqual([]);
    const charts = await page.locator('[data-chart]').count();
    expect(charts).toBe(5); // scores, score-vs-params, memory, throughput, roofline
    expect(await page.locator('[data-chart] svg').count()).toBe(charts);
    expect(await page.locator('#chart-scores svg .mark-rect path').count()).toBeGreaterThan(0);
    await page.close();
  });

  it('works opened straight from disk (file://), as an offline copy would be', async () => {
    const { page, problems } = await open('/index.html', `file://${site}`);
    expect(problems).toEqual([]);
    expect(await page.locator('[data-chart] svg').count()).toBe(5);
    await page.close();
  });

  it('sorting by a column reorders the rows; failed cells sort last both ways', async () => {
    const { page } = await open('/');
    // Unsorted: run order (sweep's five configs, then nightly-base's one).
    expect(await column(page, 'peak memory')).toEqual(['0.27 GiB', '0.29 GiB', '0.30 GiB', '0.19 GiB', '0.29 GiB', '0.30 GiB']);
    await page.click('th:text-is("peak memory")');
    // generate.ts rssMiB: 310 (x2), 300, 295, 280, 190 -> descending on first click.
    expect(await column(page, 'peak memory')).toEqual(['0.30 GiB', '0.30 GiB', '0.29 GiB', '0.29 GiB', '0.27 GiB', '0.19 GiB']);
    await page.click('th:text-is("peak memory")');
    expect((await column(page, 'peak memory'))[0]).toBe('0.19 GiB');
    await page.click('th:text-is("gsm8k")');
    const desc = await column(page, 'gsm8k');
    await page.click('th:text-is("gsm8k")');
    const asc = await column(page, 'gsm8k');
    expect(desc.at(-1)).toBe('FAILED');
    expect(asc.at(-1)).toBe('FAILED');
    expect(asc[0]).not.toBe(desc[0]);
    await page.close();
  });

  it('filters by method and by text', async () => {
    const { page } = await open('/');
    await page.selectOption('#filter-method', 'qlora');
    expect(await column(page, 'PEFT method')).toEqual(['qlora']);
    await page.selectOption('#filter-method', '');
    await page.fill('#filter-text', 'tiny-llama-2');
    expect(await column(page, 'model')).toEqual(['tiny-llama-2', 'tiny-llama-2']);
    expect(await page.textContent('#row-count')).toBe('2 of 6 rows');
    await page.close();
  });

  it('per-run pages load cleanly and link back', async () => {
    const { page, problems } = await open('/runs/sweep.html');
    expect(problems).toEqual([]);
    expect(await page.locator('table#failures td.failed').textContent()).toContain('SIGKILL');
    expect(await page.locator('[data-chart] svg').count()).toBe(5);
    await page.click('text=← leaderboard');
    await page.waitForURL(`${base}/index.html`);
    await page.close();
  });
});
