import type { CommandSpec } from './command.ts';

export const GENERATE_BACKENDS = ['ort', 'reference'] as const;

export const GENERATE_COMMAND: CommandSpec = {
  name: 'generate',
  describe: 'Continue a prompt (greedy by default): the generated tokens and their text',
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'Zoo id (tiny-* are generated on first use), checkpoint directory, or HF repo id' })
      .option('prompt', { type: 'string', demandOption: true, describe: 'Prompt text, tokenized with the model tokenizer (BOS added as its config says)' })
      .option('max-new-tokens', { type: 'number', default: 32, describe: 'Generate at most this many tokens (stops earlier at an eos token)' })
      .option('backend', {
        choices: GENERATE_BACKENDS,
        default: 'ort' as const,
        describe: 'ort: ONNX Runtime graph with KV cache; reference: float64 TypeScript forward (slow, the oracle)',
      })
      .option('temperature', { type: 'number', default: 0, describe: 'Sampling temperature; 0 is greedy (ort backend only above 0)' })
      .option('top-p', { type: 'number', default: 1, describe: 'Nucleus sampling: keep the most probable tokens up to this probability mass' })
      .option('seed', { type: 'number', default: 0, describe: 'Seed of the sampler (same seed, same tokens)' })
      .option('device', { choices: ['cpu', 'cuda'] as const, default: 'cpu' as const, describe: 'ORT execution provider (cuda needs the onnxruntime-node CUDA binaries)' })
      .option('dtype', { choices: ['fp32', 'fp16'] as const, default: 'fp32' as const, describe: 'ORT compute dtype: fp16 halves the weights (RMSNorm/softmax/logits stay fp32 as in HF fp16 LLaMA); not with --peft' })
      .option('peft', { type: 'string', describe: 'HF PEFT adapter directory, or a spec (lora:r=8) applied as PEFT initialises it (identity, except QLoRA\'s NF4 base)' })
      .option('image', { type: 'string', describe: 'Image file (PNG, JPEG, WebP, GIF, TIFF) for a vision model: <|image|> (LLaMA 3.2 Vision) or the image block (LLaMA 4) goes before the prompt; greedy only' })
      .option('offline', { type: 'boolean', default: false, describe: 'Never download (also HF_HUB_OFFLINE=1)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print {"text", "token_ids"} of the generated tokens only (field names are a stable contract)' })
      .example('$0 generate --model tiny-llama-3 --prompt "Once upon a time" --max-new-tokens 8 --json', 'greedy, KV-cached ORT decoding')
      .example('$0 generate --model tiny-llama-3.2-vision --image scan.png --prompt "Answer:" --json', 'LLaMA 3.2 Vision with one image'),
  load: () => import('./generate.ts'),
};
