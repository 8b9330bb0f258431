"""Prompts in, token ids out: splits, pre-tokenization and its fingerprinted cache. Knows no engine."""
from speedbench.data.prompts import CATEGORIES, Prompt, load_split
from speedbench.data.pretokenize import PromptSet, TokenizedPrompt, prepare_prompts

__all__ = ["CATEGORIES", "Prompt", "PromptSet", "TokenizedPrompt", "load_split", "prepare_prompts"]
