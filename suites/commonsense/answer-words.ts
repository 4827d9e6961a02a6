// commonsense_evaluate.py extract_answer's regex for social_i_qa, ARC-Challenge, ARC-Easy and
// openbookqa: r'answer1|answer2|answer3|answer4|answer5'.
export const ANSWER_WORDS = ['answer1', 'answer2', 'answer3', 'answer4', 'answer5'] as const;
