"""Prompts in, token ids out: splits, pre-tokenization and its fingerprinted cache. Knows no engine."""

from speedbench.data.pretokenize import prepare_prompts
from speedbench.data.prompts import CATEGORIES, Prompt, load_split
from speedbench.data.promptset import PromptSet, TokenizedPrompt

__all__ = ["CATEGORIES", "Prompt", "PromptSet", "TokenizedPrompt", "load_split", "prepare_prompts"]
