// The regress verdict rules on hand-built summaries (no items, so significance comes from the
// z-test on stderr): direction of the metric, the max-drop boundary, missing tasks, JUnit escaping.
import { describe, expect, it } from 'vitest';
import { regressJunit } from '../../reports/junit.ts';
import type { RunView } from '../../reports/pairing.ts';
import { regress } from '../../reports/regress.ts';
import { RESULTS_SCHEMA_ID, type TaskScore } from '../../reports/summary-types.ts';

function view(source: string, scores: TaskScore[]): RunView {
  return {
    source,
    records: null,
    summary: {
      schema: RESULTS_SCHEMA_ID, run_id: source, time: null, git_sha: null, package_version: null, data_files: [], kernels: [], problems: [],
      configs: [{
        key: 'm/lora', model: 'm', version: null, peft: 'lora', scores, failures: [], total_params: null, trainable_params: null,
        peak_rss_bytes: null, device_bytes: null, prefill_tokens_per_s: null, decode_tokens_per_s: null,
      }],
    },
  };
}
const score = (task: string, metric: string, value: number, stderr: number | null): TaskScore => ({ task, metric, value, stderr, n: 100 });
const opts = { maxDrop: 0.01, alpha: 0.05, metric: 'acc' };

describe('regress verdicts', () => {
  it('perplexity going up is the drop (lower is better), going down is not', () => {
    // By hand: se = sqrt(2) * 0.1 = 0.1414; |z| = 2 / 0.1414 = 14.1, p ~ 0.
    const worse = regress(view('b', [score('wikitext', 'word_perplexity', 10, 0.1)]), view('c', [score('wikitext', 'word_perplexity', 12, 0.1)]), opts);
    expect(worse.verdicts[0]).toMatchObject({ status: 'regression', drop: 2, test: 'z' });
    const better = regress(view('b', [score('wikitext', 'word_perplexity', 12, 0.1)]), view('c', [score('wikitext', 'word_perplexity', 10, 0.1)]), opts);
    expect(better.verdicts[0]).toMatchObject({ status: 'pass', drop: -2 });
  });

  it('a drop of exactly --max-drop passes ("beyond" is strict)', () => {
    // 0.5 and 0.25 are exact binary fractions, so the drop is exactly 0.25.
    const r = regress(view('b', [score('piqa', 'acc', 0.5, 0)]), view('c', [score('piqa', 'acc', 0.25, 0)]), { ...opts, maxDrop: 0.25 });
    expect(r.regressed).toBe(false);
  });

  it('a large drop with no stderr and no items cannot be shown to be noise, so it fails', () => {
    const r = regress(view('b', [score('piqa', 'acc', 0.7, null)]), view('c', [score('piqa', 'acc', 0.6, null)]), opts);
    expect(r.verdicts[0]?.status).toBe('regression');
    expect(r.verdicts[0]?.reason).toContain('no samples or stderr');
  });

  it('a task scored in the baseline but absent now fails; a new task passes', () => {
    const r = regress(view('b', [score('piqa', 'acc', 0.7, 0.01)]), view('c', [score('boolq', 'acc', 0.6, 0.01)]), opts);
    expect(r.verdicts.map((v) => [v.task, v.status])).toEqual([['piqa', 'missing'], ['boolq', 'pass']]);
    expect(r.regressed).toBe(true);
  });

  it('JUnit output escapes XML in names and messages', () => {
    const r = regress(view('b<1>', [score('a&b "x"', 'acc', 0.9, null)]), view('c', [score('a&b "x"', 'acc', 0.1, null)]), opts);
    const xml = regressJunit(r);
    expect(xml).toContain('name="a&amp;b &quot;x&quot;"');
    expect(xml).toContain('vs b&lt;1&gt;');
    expect(xml).toMatch(/tests="1" failures="1"/);
  });
});
