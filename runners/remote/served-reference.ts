// The model `llama-eval serve` puts behind /v1/completions today: the float64 reference forward,
// encoding and generating exactly as the reference runner does (no BOS on contexts, an empty
// prompt conditioned on BOS), so a run through `--backend openai` against this server gives the
// reference runner's answers.
import { openCheckpoint } from '../hf/checkpoint.ts';
import { linear, logSoftmax } from '../reference-ops.ts';
import { firstStop } from '../reference-runner.ts';
import { referenceHidden, referenceLogits } from '../reference.ts';
import { loadReferenceFromCheckpoint } from '../reference-weights.ts';
import { LlamaTokenizer } from '../tokenizer.ts';
import type { ServedModel } from './server.ts';

export async function servedReferenceModel(model: string, options: { name?: string; offline?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<ServedModel> {
  const checkpoint = await openCheckpoint(model, { offline: options.offline, env: options.env });
  const tokenizer = LlamaTokenizer.fromDir(checkpoint.dir);
  const weights = loadReferenceFromCheckpoint(checkpoint);
  const prefix = tokenizer.bosTokenId ?? tokenizer.eosTokenId;
  const eos = new Set<number>();
  const configured = checkpoint.config.eos_token_id;
  for (const id of Array.isArray(configured) ? configured : [configured]) if (typeof id === 'number') eos.add(id);
  if (tokenizer.eosTokenId !== null) eos.add(tokenizer.eosTokenId);
  return {
    name: options.name ?? model,
    maxContext: checkpoint.arch.text.maxPositionEmbeddings,
    encode(text) {
      if (text === '' && prefix !== null) return [prefix];
      return tokenizer.encode(text, { addSpecialTokens: false });
    },
    decode: (ids) => tokenizer.decode(ids, { skipSpecialTokens: true }),
    async scorePositions(ids) {
      if (ids.length < 2) return [];
      const rows = referenceLogits(weights, ids.slice(0, -1)).map((row) => logSoftmax(row));
      return rows.map((row, i) => {
        let top = 0;
        for (let v = 1; v < row.length; v++) if (row[v]! > row[top]!) top = v;
        return { logprob: row[ids[i + 1]!]!, topId: top, topLogprob: row[top]! };
      });
    },
    async generate(prompt, until, maxTokens) {
      // The reference runner's greedy loop (argmax of the last position; EOS ends and counts as a
      // token; stop strings checked on the decoded text), kept here because the server needs the ids.
      const ids = prompt === '' && prefix !== null ? [prefix] : tokenizer.encode(prompt, { addSpecialTokens: false });
      const generated: number[] = [];
      let text = '';
      for (let step = 0; step < maxTokens; step++) {
        const last = referenceHidden(weights, ids).at(-1)!;
        const row = linear(weights.lmHead, last, weights.text.vocabSize, weights.text.hiddenSize);
        let next = 0;
        for (let v = 1; v < row.length; v++) if (row[v]! > row[next]!) next = v;
        generated.push(next);
        if (eos.has(next)) break;
        ids.push(next);
        text = tokenizer.decode(generated, { skipSpecialTokens: true });
        if (firstStop(text, until) >= 0) break;
      }
      const stop = firstStop(text, until);
      return { text: stop >= 0 ? text.slice(0, stop) : text, tokens: generated.length, ids: generated };
    },
  };
}
