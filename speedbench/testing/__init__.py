"""Test fixtures that speak real engines' wire formats (SGLang/TRT-LLM emulators, a fake vLLM-shaped server),
shipped with the package so users and CI can exercise adapters offline. Never benchmark targets."""
