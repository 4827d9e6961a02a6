// The scoring head: log p(target) and "target is the argmax" for rows of logits, computed by ORT in
// a small second graph, so the multiple-choice scorer reads [rows, k] numbers instead of running a
// float64 log-softmax over every 128K-wide row in JavaScript (which cost more than the forward of a
// tiny model; docs/benchmarks.md "Multiple choice after the lm_head gather").
//
// A second graph rather than outputs of the model graph: the model's forward (llama-model.ts) returns
// logits only, and the head reads those rows where ORT left them (onnxruntime-node feeds a typed
// array to a session without copying it). The float64 JS path (llama-model.ts scoreRow) stays
// selectable for the parity tests: `OrtRunner`'s `scoring: 'js'`.
import { OnnxGraphBuilder } from './onnx-builder.ts';
import { OrtSession } from './session.ts';

export interface TargetScores {
  /** [rows * k] log p(targets[r][j] | row r), float32 log-softmax as ORT's LogSoftmax computes it. */
  logprobs: Float32Array;
  /** [rows * k] 1 where targets[r][j] is the argmax of row r (ties to the lower id, as torch.argmax), else 0. */
  greedy: Uint8Array;
}

/**
 * logits [rows, vocab] float32, targets [rows, k] int64 -> target_logprobs [rows, k] float32,
 * target_is_greedy [rows, k] bool. LogSoftmax is max-subtracted with a float32 sum (MLAS); the
 * float64 JS path agrees within 1e-5 on the tiny models (test/unit/ort-score-head.test.ts).
 */
export function buildScoreHeadGraph(vocab: number): Uint8Array {
  const g = new OnnxGraphBuilder('score_head');
  g.input('logits', 'float32', ['rows', vocab]);
  g.input('targets', 'int64', ['rows', 'k']);
  const logprobs = g.op('LogSoftmax', ['logits'], { attrs: { axis: -1 } });
  g.node('GatherElements', [logprobs, 'targets'], ['target_logprobs'], { attrs: { axis: 1 } });
  // ONNX ArgMax returns the first maximal index by default (select_last_index = 0), as torch.argmax.
  const argmax = g.op('ArgMax', ['logits'], { attrs: { axis: 1, keepdims: 1 } });
  g.node('Equal', [argmax, 'targets'], ['target_is_greedy']);
  g.output('target_logprobs', 'float32', ['rows', 'k']);
  g.output('target_is_greedy', 'bool', ['rows', 'k']);
  return g.toBytes();
}

/** A CPU session of the scoring head for one vocabulary size. */
export class ScoreHead {
  private constructor(private readonly session: OrtSession, readonly vocab: number) {}

  /**
   * One intra-op thread by default: the head then runs on the calling thread with no pool of its own,
   * whose spinning workers would compete with the model session's for the same cores (80 rows of
   * 128256 take 50-100 ms this way on the 2-core dev VM, vs 150-300 ms in float64 JS).
   */
  static async create(vocab: number, intraOpThreads = 1): Promise<ScoreHead> {
    return new ScoreHead(await OrtSession.create(buildScoreHeadGraph(vocab), { device: 'cpu', intraOpThreads }), vocab);
  }

  /** Scores `targets[r]` (the same count k for every row) against row r of `logits` [rows, vocab]. */
  async score(logits: Float32Array, targets: readonly (readonly number[])[]): Promise<TargetScores> {
    const rows = targets.length;
    const k = targets[0]?.length ?? 0;
    if (rows === 0 || k === 0) throw new RangeError('score head: no targets');
    if (logits.length < rows * this.vocab) throw new RangeError(`score head: ${logits.length} logits hold fewer than ${rows} rows of ${this.vocab}`);
    const flat = new BigInt64Array(rows * k);
    targets.forEach((row, r) => {
      if (row.length !== k) throw new RangeError(`score head: row ${r} has ${row.length} targets, expected ${k}`);
      row.forEach((id, j) => {
        if (!Number.isInteger(id) || id < 0 || id >= this.vocab) throw new RangeError(`score head: target ${id} is outside the vocabulary [0, ${this.vocab})`);
        flat[r * k + j] = BigInt(id);
      });
    });
    const out = await this.session.run({
      logits: { data: logits.subarray(0, rows * this.vocab), dims: [rows, this.vocab] },
      targets: { data: flat, dims: [rows, k] },
    });
    return { logprobs: out.target_logprobs!.data as Float32Array, greedy: out.target_is_greedy!.data as Uint8Array };
  }

  async close(): Promise<void> {
    await this.session.close();
  }
}
