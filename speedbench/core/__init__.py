"""The neutral bottom layer: types every other package shares and that import nothing of speedbench but
``config`` (the request record and its statuses, the SD acceptance counters, the JSON codec, the point id).

Layers above (data, engines, load, metrics, ...) import from here; nothing here imports them. The layer order
is checked by ``lint-imports`` (the contract is in pyproject.toml).
"""
