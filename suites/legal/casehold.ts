// CaseHOLD (Zheng et al., ICAIL 2021). Loglikelihood: lm-eval lm_eval/tasks/casehold/utils.py
//   process_docs: "Complete the following excerpt from a US court opinion:\n{citing_prompt}\nAnswer:",
//   choices holding_0..holding_4, gold label; acc and acc_norm (casehold.yaml).
// Data: the test split from the Hub. casehold/casehold is a loading-script dataset, so the parquet copy
//   in coastalcph/lex_glue (case_hold/test-00000-of-00001.parquet: context = citing_prompt, endings =
//   the five holdings, label) is read; `--data` also takes casehold/casehold's CSV layout
//   (citing_prompt, holding_0..holding_4, label). Offline and uncached it is skipped.
import { int, readRows, rowError, str, strList, type LocatedRow } from '../load/formats.ts';
import { loadDocs } from '../load/source.ts';
import { multipleChoice } from '../multiple-choice.ts';
import type { Task } from '../types.ts';

export interface CaseholdDoc {
  id: string;
  citingPrompt: string;
  holdings: string[];
  gold: number;
}

export function caseholdDoc(r: LocatedRow, index: number): CaseholdDoc {
  const lexGlue = 'endings' in r.row;
  const holdings = lexGlue ? strList(r, 'endings') : [0, 1, 2, 3, 4].map((i) => str(r, `holding_${i}`));
  if (holdings.length !== 5) throw rowError(r.where, `expected 5 holdings, got ${holdings.length}`);
  const gold = int(r, 'label');
  if (gold < 0 || gold > 4) throw rowError(r.where, `label ${gold} out of range 0-4`);
  const id = typeof r.row.example_id === 'string' ? r.row.example_id : String(index + 1);
  return { id, citingPrompt: str(r, lexGlue ? 'context' : 'citing_prompt'), holdings, gold };
}

export const casehold: Task<CaseholdDoc> = {
  name: 'casehold',
  suite: 'legal',
  protocols: ['loglikelihood'],
  metrics: { loglikelihood: ['acc', 'acc_norm'] },
  load: (options) =>
    loadDocs(
      {
        task: 'casehold',
        hub: { repo: 'coastalcph/lex_glue', revision: 'main', files: ['case_hold/test-00000-of-00001.parquet'] },
        parse: async ([path]) => (path === undefined ? [] : (await readRows(path)).map(caseholdDoc)),
      },
      options,
    ),
  docId: (doc) => doc.id,
  multipleChoice: (doc) => multipleChoice(`Complete the following excerpt from a US court opinion:\n${doc.citingPrompt}\nAnswer:`, doc.holdings, doc.gold),
};
