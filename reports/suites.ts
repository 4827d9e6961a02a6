// Which suite a task belongs to, for the leaderboard's per-suite columns. Reports may not import
// suites/ (DESIGN.md), and records name only the task, so the task lists of the suites issue are
// repeated here; a task id of the form "<suite>/<task>" names its suite itself.
export const SUITES = ['commonsense', 'arithmetic', 'legal', 'medical', 'medical-vqa'] as const;
export type Suite = (typeof SUITES)[number] | 'other';

const TASKS: Record<Exclude<Suite, 'other'>, RegExp> = {
  commonsense: /^(boolq|piqa|siqa|social_?iqa|hellaswag|winogrande|arc[-_](easy|challenge)|openbookqa|obqa)$/,
  arithmetic: /^(gsm8k|aqua|svamp|mawps|addsub|singleeq|multiarith)$/,
  legal: /^(legalbench.*|casehold|case_hold|cuad|ledgar|scotus)$/,
  'medical-vqa': /^medical-vqa(-closed|-open)?$/,
  medical: /^(pubmedqa|medqa.*|medmcqa|mmlu[_-](anatomy|clinical_knowledge|college_biology|college_medicine|medical_genetics|professional_medicine))$/,
};

export function suiteOf(task: string): Suite {
  const prefix = task.split('/')[0] ?? '';
  if (task.includes('/') && (SUITES as readonly string[]).includes(prefix)) return prefix as Suite;
  const name = task.toLowerCase();
  for (const suite of SUITES) if (TASKS[suite].test(name)) return suite;
  return 'other';
}
