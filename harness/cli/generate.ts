// `llama-eval generate`: greedy (default) or sampled decoding of a prompt. token_ids are the generated tokens only (an
// eos token, when reached, is the last of them, as HF generate returns it); text is their decoding
// without special tokens.
import { InputError } from '../errors.ts';
import { openCheckpoint, type Checkpoint } from '../../runners/hf/checkpoint.ts';
import { LlamaTokenizer } from '../../runners/tokenizer.ts';
import type { Sampling } from '../../runners/ort/runner.ts';
import type { CliIO } from './command.ts';
import { assertImageModel, isMllama, openMllamaRunner, readImageArg, referenceImage, withImageToken } from './logprobs-image.ts';
import { isLlama4Vision, llama4ImageGreedy } from './logprobs-llama4.ts';
import { referenceGreedyIds } from './greedy.ts';
import { printJson } from './output.ts';

/** The reference's greedy ids: a full float64 forward per token (no cache), so only for small models. */
async function referenceGreedy(checkpoint: Checkpoint, tokenizer: LlamaTokenizer, prompt: number[], maxNew: number, peft: string | undefined): Promise<number[]> {
  const [{ loadReferenceFromCheckpoint }, { referenceLogits }, { eosIds }, { applyPeftToReference }] = await Promise.all([
    import('../../runners/reference-weights.ts'),
    import('../../runners/reference.ts'),
    import('../../runners/ort/runner.ts'),
    import('../../runners/peft/index.ts'),
  ]);
  const model = applyPeftToReference(loadReferenceFromCheckpoint(checkpoint), peft, { mode: 'unmerged', init: 'zero' });
  return referenceGreedyIds(prompt, maxNew, eosIds(checkpoint, tokenizer), (ids) => referenceLogits(model, ids).at(-1)!);
}

/** The reference's greedy ids on LLaMA 3.2 Vision with an image (full forward per token, as above). */
async function referenceImageGreedy(checkpoint: Checkpoint, tokenizer: LlamaTokenizer, prompt: number[], maxNew: number, peft: string | undefined, image: Uint8Array, imageName: string): Promise<number[]> {
  const [{ loadReferenceFromCheckpoint }, { projectorFor, referenceHidden }, { eosIds }, { applyPeftToReference }] = await Promise.all([
    import('../../runners/reference-weights.ts'),
    import('../../runners/reference.ts'),
    import('../../runners/ort/runner.ts'),
    import('../../runners/peft/index.ts'),
  ]);
  const visual = await referenceImage(checkpoint, applyPeftToReference(loadReferenceFromCheckpoint(checkpoint), peft, { mode: 'unmerged', init: 'zero' }), image, imageName);
  const { model } = visual;
  // The tile mask is over the whole sequence: every new row comes after <|image|> and sees its tiles.
  // lm_head on the last row only (referenceVisionLogits applies it to every row).
  return referenceGreedyIds(prompt, maxNew, eosIds(checkpoint, tokenizer), (ids) =>
    projectorFor(model.peft)('lm_head', model.lmHead, referenceHidden(model, ids, visual.input(ids)).at(-1)!, model.text.vocabSize, model.text.hiddenSize));
}

/** LLaMA 3.2 Vision on ORT (greedy, KV-cached), with or without the image. */
async function ortMllamaGenerate(checkpoint: Checkpoint, tokenizer: LlamaTokenizer, prompt: number[], maxNew: number, device: 'cpu' | 'cuda', peft: string | undefined, image: Uint8Array | null): Promise<number[]> {
  const runner = await openMllamaRunner(checkpoint, peft, { device, tokenizer });
  try {
    return await runner.greedyIds(prompt, image, maxNew);
  } finally {
    await runner.close();
  }
}

async function ortGenerate(checkpoint: Checkpoint, tokenizer: LlamaTokenizer, prompt: number[], maxNew: number, device: 'cpu' | 'cuda', sampling: Sampling, peft: string | undefined, dtype: 'fp32' | 'fp16'): Promise<number[]> {
  const { OrtRunner, openOrtLlamaModel } = await import('../../runners/ort/runner.ts');
  const runner = new OrtRunner(checkpoint, (await openOrtLlamaModel(checkpoint, peft, { device, dtype })).model, tokenizer);
  try {
    return await runner.complete(prompt, maxNew, { sampling });
  } finally {
    await runner.close();
  }
}

export async function run(args: Record<string, unknown>, io: CliIO): Promise<number> {
  const maxNew = Number(args.maxNewTokens ?? args['max-new-tokens'] ?? 32);
  if (!Number.isInteger(maxNew) || maxNew < 1) throw new InputError(`--max-new-tokens: expected a positive integer, got ${String(args.maxNewTokens)}`);
  const sampling: Sampling = { temperature: Number(args.temperature ?? 0), topP: Number(args.topP ?? args['top-p'] ?? 1), seed: Number(args.seed ?? 0) };
  if (!(sampling.temperature >= 0)) throw new InputError(`--temperature: expected a number >= 0 (0 is greedy), got ${String(args.temperature)}`);
  if (!(sampling.topP > 0 && sampling.topP <= 1)) throw new InputError(`--top-p: expected a number in (0, 1], got ${String(args.topP)}`);
  if (!Number.isInteger(sampling.seed)) throw new InputError(`--seed: expected an integer, got ${String(args.seed)}`);
  if (args.backend === 'reference' && sampling.temperature > 0) throw new InputError('--temperature: the reference backend decodes greedily only; use --backend ort to sample');
  const device = args.device === 'cuda' ? 'cuda' : 'cpu';
  if (args.backend === 'reference' && device === 'cuda') throw new InputError('--device cuda: the reference backend runs on the CPU only; use --backend ort');
  const peft = args.peft === undefined ? undefined : String(args.peft);
  const dtype = args.dtype === 'fp16' ? 'fp16' : 'fp32';
  if (args.backend === 'reference' && dtype === 'fp16') throw new InputError('--dtype fp16: the reference backend computes in float64 only; use --backend ort');
  const checkpoint = await openCheckpoint(String(args.model), { offline: args.offline === true });
  if (args.image !== undefined) assertImageModel(checkpoint, { llama4: true });
  const image = readImageArg(args.image);
  if (image !== null && isLlama4Vision(checkpoint)) {
    // LLaMA 4 early fusion: the image block before the prompt, greedy, fp32 (logprobs-llama4.ts).
    if (sampling.temperature > 0) throw new InputError(`--temperature: ${checkpoint.id} with --image decodes greedily only; drop --temperature`);
    if (dtype === 'fp16') throw new InputError(`--dtype fp16: the LLaMA 4 image graphs of ${checkpoint.id} run in fp32 only; drop --dtype`);
    const tokenizer = LlamaTokenizer.fromDir(checkpoint.dir);
    const ids = await llama4ImageGreedy(checkpoint, tokenizer, tokenizer.encode(String(args.prompt ?? '')), { bytes: image, name: `--image ${String(args.image)}` }, args.backend === 'reference' ? 'reference' : 'ort', maxNew, peft);
    return printGenerated(io, args.json === true, tokenizer, ids);
  }
  const mllama = isMllama(checkpoint);
  if (mllama && dtype === 'fp16') throw new InputError(`--dtype fp16: the ORT LLaMA 3.2 Vision graphs are fp32 only; drop --dtype for ${checkpoint.id}`);
  if (mllama && args.backend !== 'reference') {
    // The mllama runner decodes greedily in fp32 (mllama-runner.ts): refuse what it would ignore.
    if (sampling.temperature > 0) throw new InputError(`--temperature: ${checkpoint.id} (LLaMA 3.2 Vision) decodes greedily only on ORT; drop --temperature`);
  }
  const tokenizer = LlamaTokenizer.fromDir(checkpoint.dir);
  const text = tokenizer.encode(String(args.prompt ?? ''));
  if (text.length === 0 && image === null) throw new InputError('--prompt: the prompt has no tokens (and the tokenizer adds no BOS); give some text');
  // <|image|> before the text, as the runners and HF's "<|image|><|begin_of_text|>..." prompt put it.
  const prompt = image ? withImageToken(checkpoint, text) : text;
  const imageName = String(args.image);
  const tokenIds = args.backend === 'reference'
    ? image ? await referenceImageGreedy(checkpoint, tokenizer, prompt, maxNew, peft, image, imageName) : await referenceGreedy(checkpoint, tokenizer, prompt, maxNew, peft)
    : mllama ? await ortMllamaGenerate(checkpoint, tokenizer, prompt, maxNew, device, peft, image) : await ortGenerate(checkpoint, tokenizer, prompt, maxNew, device, sampling, peft, dtype);
  return printGenerated(io, args.json === true, tokenizer, tokenIds);
}

function printGenerated(io: CliIO, json: boolean, tokenizer: LlamaTokenizer, tokenIds: number[]): number {
  const decoded = tokenizer.decode(tokenIds, { skipSpecialTokens: true });
  if (json) {
    printJson(io, { text: decoded, token_ids: tokenIds });
    return 0;
  }
  io.out(`${decoded}\n`);
  return 0;
}
