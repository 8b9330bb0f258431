"""The typed form of a points.jsonl line, derived from the PointSummary dataclass the runner writes.

Derived, not written out again: the dataclass is the one list of a point's fields, so the model (and the
generated docs/schema/points.schema.json) cannot drift from what is written. Like every results document
(speedbench.core.documents) it reads lines written before it: keys it does not know are kept, and a field
the dataclass gives a default may be missing.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from speedbench.metrics.distribution import Distribution
from speedbench.metrics.summary import PointSummary


def _open_model(dc: type, name: str, doc: str) -> type[BaseModel]:
    """A pydantic model with ``dc``'s fields, types and defaults; nested dataclasses become models too."""
    hints = typing.get_type_hints(dc)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(dc):
        kind = hints[f.name]
        if kind is Distribution:
            kind = DistributionDoc
        if f.default is not dataclasses.MISSING:
            fields[f.name] = (kind, Field(f.default))
        elif f.default_factory is not dataclasses.MISSING:
            fields[f.name] = (kind, Field(default_factory=f.default_factory))
        else:
            fields[f.name] = (kind, ...)
    return create_model(name, __config__=ConfigDict(extra="allow"), __doc__=doc, **fields)


DistributionDoc = _open_model(
    Distribution,
    "DistributionDoc",
    "One distribution summary (speedbench.metrics.distribution.Distribution); NaN when count is 0.",
)
PointDoc = _open_model(
    PointSummary,
    "PointDoc",
    "One line of points.jsonl: a PointSummary (speedbench.metrics.summary) as stored; the last line of a "
    "point id wins. Times in seconds; field meanings in docs/results-schema.md.",
)
