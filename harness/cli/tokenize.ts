// `llama-eval tokenize`: the ids (and token strings) of a text under a checkpoint's tokenizer.
import { openCheckpoint } from '../../runners/hf/checkpoint.ts';
import { LlamaTokenizer } from '../../runners/tokenizer.ts';
import type { CliIO } from './command.ts';
import { printJson, printTable } from './output.ts';

export async function run(args: Record<string, unknown>, io: CliIO): Promise<number> {
  const checkpoint = await openCheckpoint(String(args.model), { offline: args.offline === true });
  const tokenizer = LlamaTokenizer.fromDir(checkpoint.dir);
  const ids = tokenizer.encode(String(args.text), { addSpecialTokens: args.specialTokens !== false });
  if (args.json) {
    printJson(io, { input_ids: ids });
    return 0;
  }
  printTable(io, ['#', 'id', 'token'], ids.map((id, i) => [i, id, JSON.stringify(tokenizer.idToToken(id) ?? '')]));
  io.out(`${ids.length} tokens\n`);
  return 0;
}
