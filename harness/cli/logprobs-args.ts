import type { CommandSpec } from './command.ts';

export const LOGPROBS_BACKENDS = ['reference', 'ort'] as const;

export const LOGPROBS_COMMAND: CommandSpec = {
  name: 'logprobs',
  describe: 'Per-token log-probabilities of a text or id sequence: log p(token i | tokens < i)',
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'Zoo id (tiny-* are generated on first use), checkpoint directory, or HF repo id' })
      .option('text', { type: 'string', describe: 'Text, tokenized with the model tokenizer (BOS added as its config says)' })
      .option('ids', { type: 'string', describe: 'Comma-separated token ids, used as given (no BOS added)' })
      .conflicts('text', 'ids')
      .check((a) => {
        if (a.text === undefined && a.ids === undefined) throw new Error('Give --text or --ids.');
        return true;
      })
      .option('backend', {
        choices: LOGPROBS_BACKENDS,
        default: 'reference' as const,
        describe: 'reference: float64 TypeScript forward (the oracle); ort: ONNX Runtime graph',
      })
      .option('dtype', { choices: ['fp32', 'fp16'] as const, default: 'fp32' as const, describe: 'ORT compute dtype: fp16 halves the weights (RMSNorm/softmax/logits stay fp32 as in HF fp16 LLaMA); not with --peft' })
      .option('peft', { type: 'string', describe: 'HF PEFT adapter directory, or a spec (lora:r=8) applied as PEFT initialises it (identity, except QLoRA\'s NF4 base)' })
      .option('image', { type: 'string', describe: 'Image file (PNG, JPEG, WebP, GIF, TIFF) for a vision model. LLaMA 3.2 Vision: <|image|> goes before the text (--ids: first, unless the ids hold it); LLaMA 4: the image block goes before the text, its <|patch|> positions read null' })
      .option('offline', { type: 'boolean', default: false, describe: 'Never download (also HF_HUB_OFFLINE=1)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print {"input_ids", "token_logprobs"} (field names are a stable contract)' })
      .example('$0 logprobs --model tiny-llama-3 --text "Hello world" --json', 'token_logprobs[0] is null')
      .example('$0 logprobs --model tiny-llama-3.2-vision --image scan.png --text "Is there a lesion?" --json', 'token_logprobs of the image token is null')
      .example('$0 logprobs --model ./Llama-3.2-1B --ids 128000,9906,1917 --json', 'compare with another implementation'),
  load: () => import('./logprobs.ts'),
};
