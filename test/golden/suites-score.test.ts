// Scoring and answer extraction pinned to hand-worked examples and to upstream's own data.
import { describe, expect, it } from 'vitest';
import { multipleChoice } from '../../suites/multiple-choice.ts';
import {
  argmax,
  extractAnswerLetter,
  extractFirstOption,
  extractLastNumber,
  legalExactMatch,
  meanStderr,
  numericMatch,
  scoreMultipleChoice,
} from '../../suites/score.ts';

describe('scoreMultipleChoice (lm-eval process_results, multiple_choice)', () => {
  it('acc_norm divides by the choice text length without the target delimiter', () => {
    // Hand computation: choices "a" (len 1) and "bbbb" (len 4), gold 1.
    // lls -2, -4: acc argmax(-2, -4) = 0 -> 0; acc_norm argmax(-2/1, -4/4) = argmax(-2, -1) = 1 -> 1.
    const mc = multipleChoice('Q:', ['a', 'bbbb'], 1);
    expect(mc.choices).toEqual([' a', ' bbbb']);
    expect(scoreMultipleChoice(mc, [-2, -4])).toEqual({ acc: 0, acc_norm: 1 });
    // lls -1, -3.5 separate the two length conventions. Without the delimiter (lm-eval):
    // -1/1 = -1 vs -3.5/4 = -0.875 -> 1. Counting the space (2 and 5) would give -0.5 vs -0.7 -> 0.
    expect(scoreMultipleChoice(mc, [-1, -3.5])).toEqual({ acc: 0, acc_norm: 1 });
  });

  it('ties go to the first index, as numpy.argmax', () => {
    // numpy.argmax([-1.0, -1.0, -2.0]) == 0 (documented: "the indices corresponding to the first occurrence are returned").
    expect(argmax([-1, -1, -2])).toBe(0);
    const mc = multipleChoice('Q:', ['xx', 'yy', 'z'], 1);
    expect(scoreMultipleChoice(mc, [-1, -1, -2])).toEqual({ acc: 0, acc_norm: 0 });
    // numpy.argmax([1.0, nan, 2.0]) == 1: NaN propagates as the maximum.
    expect(argmax([1, NaN, 2])).toBe(1);
  });

  it('scores a fixed set of loglikelihoods to the accuracy computed by hand', () => {
    // Four docs, two choices each, gold always 0; hand-picked lls: correct, wrong, correct, tie (-> 0, correct).
    const mc = multipleChoice('Q:', ['yes', 'no'], 0);
    const lls = [[-1, -2], [-3, -1], [-0.5, -0.6], [-2, -2]];
    const acc = lls.map((l) => scoreMultipleChoice(mc, l).acc);
    expect(acc).toEqual([1, 0, 1, 1]);
    // acc_norm: lengths 3 and 2. [-1/3, -1] -> 0; [-1, -0.5] -> 1; [-0.1667, -0.3] -> 0; [-0.667, -1] -> 0.
    expect(lls.map((l) => scoreMultipleChoice(mc, l).acc_norm)).toEqual([1, 0, 1, 1]);
  });

  it('refuses a loglikelihood count that differs from the choice count', () => {
    expect(() => scoreMultipleChoice(multipleChoice('Q:', ['a', 'b'], 0), [-1])).toThrow(/1 loglikelihoods for 2 choices/);
  });
});

describe('meanStderr (lm-eval mean + mean_stderr)', () => {
  it('uses the sample standard deviation (ddof=1) over sqrt(n)', () => {
    // [1,0,1,1]: mean 0.75; squared deviations 0.0625*3 + 0.5625 = 0.75; /(n-1)=0.25; sd 0.5; /sqrt(4) = 0.25.
    expect(meanStderr([1, 0, 1, 1])).toEqual({ value: 0.75, stderr: 0.25 });
    // [2, 4, 4, 4, 5, 5, 7, 9]: mean 5, sum of squares 32, sample var 32/7, stderr sqrt(32/7)/sqrt(8) = sqrt(4/7).
    const r = meanStderr([2, 4, 4, 4, 5, 5, 7, 9]);
    expect(r.value).toBe(5);
    expect(r.stderr).toBeCloseTo(Math.sqrt(4 / 7), 14);
  });

  it('has no stderr below two values', () => {
    expect(meanStderr([1])).toEqual({ value: 1, stderr: null });
    expect(meanStderr([]).stderr).toBeNull();
  });
});

describe('LLM-Adapters answer extraction', () => {
  it('commonsense: the first option word anywhere in the response', () => {
    // Responses in the format of LLM-Adapters' own `output` fields (dataset/*/test.json, "the correct answer is X").
    expect(extractFirstOption('the correct answer is false', ['true', 'false'])).toBe('false');
    expect(extractFirstOption('  the correct answer is solution2', ['solution1', 'solution2'])).toBe('solution2');
    // re.findall(r'answer1|answer2|...', s)[0] returns the leftmost match, whichever word it is.
    expect(extractFirstOption('answer3 is better than answer1', ['answer1', 'answer2', 'answer3'])).toBe('answer3');
    // Case-sensitive and substring-matching, as upstream's regex: 'Answer1' is not found, 'answer12' yields 'answer1'.
    expect(extractFirstOption('Answer1', ['answer1'])).toBe('');
    expect(extractFirstOption('answer12', ['answer1', 'answer2'])).toBe('answer1');
    expect(extractFirstOption('no idea', ['true', 'false'])).toBe('');
  });

  it('math: the last number after commas are dropped, within 0.001 of the label', () => {
    // LLM-Adapters dataset/gsm8k/test.json item 1: output "... so he needs 24 * 24 = 576 tiles. The answer is 576.", answer "576.0".
    const gsm = 'He needs 24 tiles for every sq ft, so he needs 24 * 24 = 576 tiles. The answer is 576.';
    expect(extractLastNumber(gsm)).toBe(576);
    expect(numericMatch(Number('576.0'), extractLastNumber(gsm))).toBe(true);
    // LLM-Adapters dataset/MultiArith/test.json item 2: output says 20, answer "6.0": not a match.
    expect(numericMatch(6, extractLastNumber('That means she had 40 / 2 = 20 small gardens. The answer is 20.'))).toBe(false);
    // By hand: commas go ("1,234" -> 1234), negatives keep their sign, "3." parses as 3.
    expect(extractLastNumber('total 1,234 then -3.')).toBe(-3);
    expect(extractLastNumber('costs 1,234')).toBe(1234);
    expect(extractLastNumber('no digits')).toBe(Infinity);
    expect(numericMatch(5, Infinity)).toBe(false);
    // Tolerance: |1.8333333333333335 - 1.833| = 0.00033 <= 0.001 (mawps item 1's label vs a rounded answer).
    expect(numericMatch(1.8333333333333335, extractLastNumber('about 1.833 inches'))).toBe(true);
    expect(numericMatch(1.8333333333333335, extractLastNumber('about 1.83 inches'))).toBe(false);
  });

  it('AQuA: the first capital A-E anywhere in the stripped response', () => {
    // Upstream's re.findall(r'A|B|C|D|E', s)[0] takes the first such capital in the whole text, by hand:
    expect(extractAnswerLetter('The answer is (D).')).toBe('D');
    expect(extractAnswerLetter('Because (B) is wrong, (C).')).toBe('B');
    expect(extractAnswerLetter('none here')).toBe('');
  });
});

describe('LegalBench exact_match (lm-eval legalbench template)', () => {
  it('strips, ignores case and punctuation', () => {
    // exact_match_hf_evaluate(ignore_case=True, ignore_punctuation=True) after the strip filter, by hand:
    expect(legalExactMatch(' Yes.\n', 'Yes')).toBe(1);
    expect(legalExactMatch('generic', 'Generic')).toBe(1);
    expect(legalExactMatch('yes, it is', 'Yes')).toBe(0);
    expect(legalExactMatch("don't", 'dont')).toBe(1);
  });
});
