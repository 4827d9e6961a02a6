// `llama-eval logprobs`: token_logprobs[i] = log p(input_ids[i] | input_ids[<i]), null for i = 0.
import { InputError } from '../errors.ts';
import { openCheckpoint, type Checkpoint } from '../../runners/hf/checkpoint.ts';
import { referenceTokenLogprobs } from '../../runners/reference.ts';
import { loadReferenceFromCheckpoint } from '../../runners/reference-weights.ts';
import { LlamaTokenizer } from '../../runners/tokenizer.ts';
import { applyPeftToReference } from '../../runners/peft/index.ts';
import { imageTokenId, referenceVisionTokenLogprobs } from '../../runners/vision/mllama-text.ts';
import type { CliIO } from './command.ts';
import { assertImageModel, isMllama, readImageArg, referenceImage, withImageToken } from './logprobs-image.ts';
import { isLlama4Vision, llama4ImageLogprobs } from './logprobs-llama4.ts';
import { printJson, printTable } from './output.ts';

/** "1, 2,3" -> [1, 2, 3]; anything else is a usage error naming the bad entry. */
export function parseIds(text: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  return parts.map((p) => {
    if (!/^\d+$/.test(p)) throw new InputError(`--ids: "${p}" is not a token id (expected comma-separated non-negative integers, e.g. --ids 1,15043,3186)`);
    return Number(p);
  });
}

/** The ORT graph's token logprobs; onnxruntime is imported only when this backend is asked for. */
async function ortLogprobs(checkpoint: Checkpoint, ids: number[], peft: string | undefined, dtype: 'fp32' | 'fp16'): Promise<(number | null)[]> {
  const [{ ortTokenLogprobs }, { openOrtLlamaModel }] = await Promise.all([import('../../runners/ort/llama-model.ts'), import('../../runners/ort/runner.ts')]);
  const { model } = await openOrtLlamaModel(checkpoint, peft, { dtype });
  try {
    return await ortTokenLogprobs(model, ids);
  } finally {
    await model.close();
  }
}

/** LLaMA 3.2 Vision (mllama) on ORT, with or without the image (no tokenizer needed: ids are given). */
async function ortMllamaLogprobs(checkpoint: Checkpoint, ids: number[], image: { bytes: Uint8Array; name: string } | null, peft: string | undefined): Promise<(number | null)[]> {
  const { openOrtMllama, ortMllamaTokenLogprobs } = await import('../../runners/ort/mllama-runner.ts');
  const opened = await openOrtMllama(checkpoint, { device: 'cpu', peft });
  try {
    return await ortMllamaTokenLogprobs(opened, checkpoint.config, ids, image);
  } finally {
    await opened.model.close();
  }
}

async function referenceLogprobs(checkpoint: Checkpoint, ids: number[], image: Uint8Array | null, peft: string | undefined, imageName: string): Promise<(number | null)[]> {
  const model = applyPeftToReference(loadReferenceFromCheckpoint(checkpoint), peft, { mode: 'unmerged', init: 'zero' });
  if (image === null) return referenceTokenLogprobs(model, ids);
  const visual = await referenceImage(checkpoint, model, image, imageName);
  return referenceVisionTokenLogprobs(visual.model, ids, visual.input(ids));
}

export async function run(args: Record<string, unknown>, io: CliIO): Promise<number> {
  // yargs checks this too; repeated here because a failed yargs check may still reach the handler.
  if ((args.text === undefined) === (args.ids === undefined)) throw new InputError('give exactly one of --text or --ids');
  const checkpoint = await openCheckpoint(String(args.model), { offline: args.offline === true });
  if (args.image !== undefined) assertImageModel(checkpoint, { llama4: true });
  const image = readImageArg(args.image);
  const llama4Image = image !== null && isLlama4Vision(checkpoint);
  // LLaMA 4's image block is spelled with the tokenizer's special tokens: it is needed even for --ids.
  const tokenizer = args.ids === undefined || !args.json || llama4Image ? LlamaTokenizer.fromDir(checkpoint.dir) : null;
  const given = args.ids !== undefined ? parseIds(String(args.ids)) : tokenizer!.encode(String(args.text));
  if (given.length === 0) throw new InputError('nothing to score: the input has no tokens');
  if (llama4Image) {
    const backend = args.backend === 'ort' ? 'ort' : 'reference';
    if (args.dtype === 'fp16') throw new InputError(`--dtype fp16: the LLaMA 4 image graphs of ${checkpoint.id} run in fp32 only; drop --dtype`);
    const badId = given.find((id) => id >= checkpoint.arch.text.vocabSize);
    if (badId !== undefined) throw new InputError(`--ids: token id ${badId} is outside the vocabulary of ${checkpoint.id} (vocab_size ${checkpoint.arch.text.vocabSize})`);
    const out = await llama4ImageLogprobs(checkpoint, tokenizer!, given, { bytes: image, name: `--image ${String(args.image)}` }, backend, args.peft === undefined ? undefined : String(args.peft));
    return printLogprobs(io, args.json === true, tokenizer, out.input_ids, out.token_logprobs, backend === 'ort' ? 'fp32' : 'float64', backend);
  }
  // <|image|> before the text (HF's "<|image|><|begin_of_text|>..." layout), unless --ids places it.
  const ids = image ? withImageToken(checkpoint, given) : given;
  const vocab = checkpoint.arch.text.vocabSize;
  const imageToken = image ? imageTokenId(checkpoint.config) : -1;
  const bad = ids.find((id) => id >= vocab && id !== imageToken);
  if (bad !== undefined) throw new InputError(`--ids: token id ${bad} is outside the vocabulary of ${checkpoint.id} (vocab_size ${vocab})`);
  const backend = args.backend === 'ort' ? 'ort' : 'reference';
  const peft = args.peft === undefined ? undefined : String(args.peft);
  const dtype = args.dtype === 'fp16' ? 'fp16' : 'fp32';
  if (backend === 'reference' && dtype === 'fp16') throw new InputError('--dtype fp16: the reference backend computes in float64 only; use --backend ort');
  const mllama = isMllama(checkpoint);
  if (mllama && dtype === 'fp16') throw new InputError(`--dtype fp16: the ORT LLaMA 3.2 Vision graphs are fp32 only; drop --dtype for ${checkpoint.id}`);
  const logprobs = backend === 'ort'
    ? mllama ? await ortMllamaLogprobs(checkpoint, ids, image && { bytes: image, name: `--image ${String(args.image)}` }, peft) : await ortLogprobs(checkpoint, ids, peft, dtype)
    : await referenceLogprobs(checkpoint, ids, image, peft, String(args.image));
  return printLogprobs(io, args.json === true, tokenizer, ids, logprobs, backend === 'ort' ? dtype : 'float64', backend);
}

function printLogprobs(io: CliIO, json: boolean, tokenizer: LlamaTokenizer | null, ids: readonly number[], logprobs: readonly (number | null)[], precision: string, backend: string): number {
  if (json) {
    printJson(io, { input_ids: ids, token_logprobs: logprobs });
    return 0;
  }
  printTable(
    io,
    ['#', 'id', 'token', 'logprob'],
    ids.map((id, i) => [i, id, JSON.stringify(tokenizer?.idToToken(id) ?? ''), logprobs[i] === null ? '-' : logprobs[i]!.toFixed(6)]),
  );
  const total = logprobs.reduce<number>((sum, x) => sum + (x ?? 0), 0);
  io.out(`sum ${total.toFixed(6)} over ${ids.length - 1} predicted tokens (backend ${backend}, ${precision})\n`);
  return 0;
}
