from tests.api.conftest import make_attach_config, tiny_tokenizer  # noqa: F401  (shared fixtures)
