// Every bundled medical prompt against lm-evaluation-harness's own code, run in Python: the contexts
// below are sha256 over all documents' prompts joined by "\0", computed with lm-eval @4e7e0d47
// lm_eval/tasks/medqa/preprocess_medqa.py doc_to_text (jind11 fields mapped to sent1/ending0..3),
// medmcqa/utils_medmcqa.py doc_to_text (options A-D as opa..opd), pubmedqa/preprocess_pubmedqa.py
// doc_to_text (ids in test_ground_truth.json order), and for MMLU the doc_to_text Jinja template of
// mmlu/default/_default_template_yaml rendered with jinja2 3.1.6, after the subject's description.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { TASKS } from '../../suites/registry.ts';

const LM_EVAL_SHA256: Record<string, string> = {
  medqa: '3cb24bd27795679aadc5955e7bbf5cfacbbcf0096c2ea504adf1d63d6512a308',
  medmcqa: '59328f17a02b137fd1764377f8eabaf4dcbfb20e04c22e99b6b680101e509c65',
  pubmedqa: 'db29f3fe4af4a4c276a3a4508466d1bbf562097ea8e70d16aa989a9d253517ea',
  mmlu_anatomy: 'de71cb2b5437b4c5b9e2fe986ce9b2ddccf2fc4fc0f9da491eb3a4f8240615e0',
  mmlu_clinical_knowledge: '3363566a5a7561da5b1710772f3a87b5611aa1c86da8297f3d230fe62ce82a71',
  mmlu_college_biology: '88eb7932d90c9af0eb34cc4801cf320ef18ca05373bf241f61533038b197027b',
  mmlu_college_medicine: '4c3385d9ce67cd989215db950e2f49034180743a0a2791effcb296450b726b04',
  mmlu_medical_genetics: '2194068201bb0ba6845d9e7aeb3d0be2fe450e805382525d450f9f69a0fc60e1',
  mmlu_professional_medicine: '5291d9cbe2a8743c31bff244bbe0ecd3627cd074fc370f65c551dc8104d5a582',
};

describe('medical prompts equal lm-eval\'s for every bundled document', () => {
  it.each(Object.keys(LM_EVAL_SHA256))('%s', async (name) => {
    const task = TASKS.find((t) => t.name === name)!;
    const out = await task.load({ offline: true, env: {} });
    if (out.status !== 'loaded') throw new Error(out.reason);
    const contexts = out.docs.map((d) => task.multipleChoice!(d).context);
    expect(createHash('sha256').update(contexts.join('\0')).digest('hex')).toBe(LM_EVAL_SHA256[name]);
  });
});
