"""Evaluations of the built-in skills: SQuAD (qa), DialogSum (summarize), HumanEval and MBPP (code)."""
