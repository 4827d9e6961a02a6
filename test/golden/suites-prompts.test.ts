// Prompts of the first bundled document of each task, written by hand from the upstream templates
// (each task file names its template; the strings below apply them to the raw row shown in the
// bundled file). A change in a template or a parser shows up here as a diff in plain text.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { alpacaPrompt } from '../../suites/llm-adapters.ts';
import { multipleChoiceRequests } from '../../suites/multiple-choice.ts';
import { TASKS } from '../../suites/registry.ts';
import type { MultipleChoice, Task } from '../../suites/types.ts';

function task(name: string): Task {
  const t = TASKS.find((x) => x.name === name);
  if (!t) throw new Error(`no task ${name}`);
  return t;
}

async function firstDoc(name: string, n = 1): Promise<unknown> {
  const out = await task(name).load({ offline: true, limit: n, env: {} });
  if (out.status !== 'loaded') throw new Error(out.reason);
  return out.docs[n - 1];
}

async function mcOf(name: string, n = 1): Promise<MultipleChoice> {
  const t = task(name);
  return t.multipleChoice!(await firstDoc(name, n));
}

describe('loglikelihood prompts follow lm-evaluation-harness', () => {
  it('boolq: "Question: {q}?\\nAnswer:", choices no/yes (passage-less: the LLM-Adapters file has none)', async () => {
    expect(await mcOf('boolq')).toEqual({
      context: 'Question: does ethanol take more energy make that produces?\nAnswer:',
      choices: [' no', ' yes'],
      gold: 0,
      normLengths: [2, 3],
    });
  });

  it('piqa: "Question: {goal}\\nAnswer:", choices sol1/sol2', async () => {
    const mc = await mcOf('piqa');
    expect(mc.context).toBe("Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:");
    expect(mc.choices).toEqual([
      ' Provide the guinea pig with a cage full of a few inches of bedding made of ripped paper strips, you will also need to supply it with a water bottle and a food dish.',
      ' Provide the guinea pig with a cage full of a few inches of bedding made of ripped jeans material, you will also need to supply it with a water bottle and a food dish.',
    ]);
    expect(mc.gold).toBe(0);
    expect(multipleChoiceRequests(mc).map((r) => r.context)).toEqual([mc.context, mc.context]);
  });

  it('siqa: "Q: {context} {question}\\nA:"', async () => {
    const mc = await mcOf('siqa');
    expect(mc.context).toBe("Q: Tracy didn't go home that evening and resisted Riley's attacks. What does Tracy need to do before this?\nA:");
    expect(mc.choices).toEqual([' make a new plan', ' Go home and see Riley', ' Find somewhere to go']);
    expect(mc.gold).toBe(2);
  });

  it('hellaswag: preprocessed query and endings', async () => {
    const mc = await mcOf('hellaswag');
    expect(mc.context).toBe('Roof shingle removal: A man is sitting on a roof. he');
    expect(mc.choices).toEqual([' is using wrap to wrap a pair of skis.', ' is ripping level tiles off.', " is holding a rubik's cube.", ' starts pulling up roofing on a roof.']);
    expect(mc.gold).toBe(3);
  });

  it('winogrande: partial evaluation, one context per option and a shared continuation', async () => {
    const mc = await mcOf('winogrande');
    expect(mc.contexts).toEqual(['Sarah was a much better surgeon than Maria so Sarah', 'Sarah was a much better surgeon than Maria so Maria']);
    expect(mc.choices).toEqual([' always got the easier cases.', ' always got the easier cases.']);
    expect(mc.gold).toBe(1);
    expect(multipleChoiceRequests(mc)).toEqual([
      { context: 'Sarah was a much better surgeon than Maria so Sarah', continuation: ' always got the easier cases.' },
      { context: 'Sarah was a much better surgeon than Maria so Maria', continuation: ' always got the easier cases.' },
    ]);
  });

  it('arc-easy and arc-challenge: "Question: {q}\\nAnswer:", choices the option texts', async () => {
    const easy = await mcOf('arc-easy');
    expect(easy.context).toBe('Question: Which statement best explains why photosynthesis is the foundation of most food webs?\nAnswer:');
    expect(easy.choices).toEqual([
      ' Sunlight is the source of energy for nearly all ecosystems.',
      ' Most ecosystems are found on land instead of in water.',
      ' Carbon dioxide is more available than other gases.',
      ' The producers in all ecosystems are plants.',
    ]);
    expect(easy.gold).toBe(0);
    const challenge = await mcOf('arc-challenge');
    expect(challenge.context).toBe(
      'Question: An astronomer observes that a planet rotates faster after a meteorite impact. Which is the most likely effect of this increase in rotation?\nAnswer:',
    );
    expect(challenge.gold).toBe(2);
  });

  it('openbookqa: the bare question stem', async () => {
    const mc = await mcOf('openbookqa');
    expect(mc.context).toBe(
      'A person wants to start saving money so that they can afford a nice vacation at the end of the year. After looking over their budget and expenses, they decide the best way to save money is to',
    );
    expect(mc.choices).toEqual([' make more phone calls', ' quit eating lunch out', ' buy less with monopoly money', ' have lunch with friends']);
    expect(mc.gold).toBe(1);
  });

  it('pubmedqa: "Abstract: {contexts}\\nQuestion: {q}\\nAnswer:", choices yes/no/maybe', async () => {
    const mc = await mcOf('pubmedqa');
    const raw = JSON.parse(readFileSync(new URL('../../suites/data/medical/pubmedqa/ori_pqal.json', import.meta.url), 'utf8')) as Record<string, { CONTEXTS: string[] }>;
    const c = raw['21645374']!.CONTEXTS;
    expect(mc.context).toBe(`Abstract: ${c[0]}\n${c[1]}\nQuestion: Do mitochondria play a role in remodelling lace plant leaves during programmed cell death?\nAnswer:`);
    expect(mc.choices).toEqual([' yes', ' no', ' maybe']);
    expect(mc.gold).toBe(0); // test_ground_truth.json: "21645374": "yes"
  });

  it('medqa: "Question: {q}\\nA. ..\\nD. ..\\nAnswer:", choices A-D', async () => {
    const mc = await mcOf('medqa');
    expect(mc.context.startsWith('Question: A junior orthopaedic surgery resident is completing a carpal tunnel repair')).toBe(true);
    expect(mc.context.endsWith(
      'Which of the following is the correct next action for the resident to take?\n' +
        'A. Disclose the error to the patient and put it in the operative report\n' +
        'B. Tell the attending that he cannot fail to disclose this mistake\n' +
        'C. Report the physician to the ethics committee\n' +
        'D. Refuse to dictate the operative report\n' +
        'Answer:',
    )).toBe(true);
    expect(mc.choices).toEqual([' A', ' B', ' C', ' D']);
    expect(mc.gold).toBe(1);
  });

  it('medmcqa: "Question: {q}\\nChoices:\\nA. ..\\nAnswer:"', async () => {
    const mc = await mcOf('medmcqa');
    expect(mc.context).toBe(
      'Question: A 29 yrs old woman with a pregnancy of 17 week has a 10 years old boy with down syndrome. She does not want another down syndrome kid; best advice to her is\n' +
        'Choices:\n' +
        'A. No test is required now as her age is below 35 years\n' +
        'B. Ultra sound at this point of time will definitely tell her that next baby will be down syndromic or not\n' +
        'C. Amniotic fluid samples plus chromosomal analysis will definitely tell her that next baby will be down syndromic or not\n' +
        'D. blood screening at this point of time will clear the exact picture\n' +
        'Answer:',
    );
    expect(mc.gold).toBe(2);
  });

  it('mmlu: subject description, then question and lettered options', async () => {
    const anatomy = await mcOf('mmlu_anatomy');
    expect(anatomy.context).toBe(
      'The following are multiple choice questions (with answers) about anatomy.\n\n' +
        'A lesion causing compression of the facial nerve at the stylomastoid foramen will cause ipsilateral\n' +
        'A. paralysis of the facial muscles.\n' +
        'B. paralysis of the facial muscles and loss of taste.\n' +
        'C. paralysis of the facial muscles, loss of taste and lacrimation.\n' +
        'D. paralysis of the facial muscles, loss of taste, lacrimation and decreased salivation.\n' +
        'Answer:',
    );
    expect(anatomy.gold).toBe(0);
    const genetics = await mcOf('mmlu_medical_genetics');
    expect(genetics.context).toBe(
      'The following are multiple choice questions (with answers) about medical genetics.\n\n' +
        'In a Robertsonian translocation fusion occurs at the:\nA. telomeres.\nB. centromeres.\nC. histones.\nD. ends of the long arms.\nAnswer:',
    );
    expect(genetics.gold).toBe(1);
  });
});

describe('generation prompts follow LLM-Adapters', () => {
  it('the Alpaca template of commonsense_evaluate.py / evaluate.py generate_prompt, byte for byte', () => {
    // The f-string's body lines are indented 16 spaces in the source and the first line ends "request. ".
    const pad = '                ';
    expect(alpacaPrompt('Do X')).toBe(
      `Below is an instruction that describes a task. Write a response that appropriately completes the request. \n\n${pad}### Instruction:\n${pad}Do X\n\n${pad}### Response:\n${pad}`,
    );
    expect(alpacaPrompt('Do X', 'with Y')).toBe(
      `Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n${pad}### Instruction:\n${pad}Do X\n\n${pad}### Input:\n${pad}with Y\n\n${pad}### Response:\n${pad}`,
    );
  });

  it('boolq and gsm8k wrap the upstream instruction; targets are the upstream answers', async () => {
    const boolq = task('boolq');
    const g = boolq.generation!(await firstDoc('boolq'));
    expect(g.prompt).toContain('\n                Please answer the following question with true or false, question: does ethanol take more energy make that produces?\n\nAnswer format: true/false\n\n                ### Response:\n                ');
    expect(g).toMatchObject({ target: 'false', maxTokens: 32 });
    const gsm = task('gsm8k').generation!(await firstDoc('gsm8k'));
    expect(gsm).toMatchObject({ target: '576.0', maxTokens: 256 });
    expect(task('gsm8k').scoreGeneration!(await firstDoc('gsm8k'), 'The answer is 576.')).toEqual({ acc: 1 });
    expect(task('aqua').scoreGeneration!(await firstDoc('aqua'), 'The answer is (D).')).toEqual({ acc: 0 }); // label "A"
  });
});
