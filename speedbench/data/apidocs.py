"""AWS API reference text from botocore's service models: the full throughput pool's largest mixed-entropy source.

botocore ships one ``service-2.json(.gz)`` per AWS service and API version; its ``documentation`` fields are
the HTML of the AWS API reference (service overview, every operation, every shape and member). Only each
service's newest API version is read; tags become plain text; a documentation string already seen (in any
service) is left out, because the same sentence ("The token for the next set of results.") recurs in
hundreds of shapes and would be copied text across windows. Standard library only, like ``pool_build``.
"""

from __future__ import annotations

import gzip
import html
import json
import re

from speedbench.data.sources import Archive

_BLOCK = re.compile(r"</?(p|li|ul|ol|note|important|div|br|h\d)[^>]*>", re.I)
_TAG = re.compile(r"<[^>]+>")


def plain(doc: str) -> str:
    """Documentation HTML as plain text: block tags become line breaks, other tags are dropped."""
    text = html.unescape(_TAG.sub("", _BLOCK.sub("\n", doc)))
    return "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())


def newest_models(ar: Archive) -> list[str]:
    """The newest API version's service model of every service, sorted by service name."""
    newest: dict[str, str] = {}
    for n in ar.names:
        parts = n.split("/")
        if len(parts) == 5 and parts[1] == "data" and parts[4] in ("service-2.json", "service-2.json.gz"):
            if parts[2] not in newest or n > newest[parts[2]]:
                newest[parts[2]] = n
    return [newest[s] for s in sorted(newest)]


def service_text(model: dict, seen: set[str]) -> str:
    """One service's reference as text: overview, operations, then shapes with their members."""
    out: list[str] = []

    def add(head: str, doc: object) -> None:
        text = plain(doc) if isinstance(doc, str) else ""
        if len(text) >= 40 and text not in seen:
            seen.add(text)
            out.append(f"{head}\n{text}\n")

    meta = model.get("metadata", {})
    add(f"## Service {meta.get('serviceFullName') or meta.get('serviceId', '')}", model.get("documentation"))
    for name, op in sorted(model.get("operations", {}).items()):
        add(f"### Operation {name}", op.get("documentation"))
    for name, shape in sorted(model.get("shapes", {}).items()):
        add(f"### Shape {name}", shape.get("documentation"))
        for member, m in sorted(shape.get("members", {}).items()):
            add(f"- {name}.{member}:", m.get("documentation"))
    return "\n".join(out)


def api_docs(ar: Archive) -> list[tuple[str, str]]:
    """(model path, reference text) per service, in service order; services with no new text are skipped."""
    seen: set[str] = set()
    units = []
    for n in newest_models(ar):
        raw = ar.read(n)
        model = json.loads(gzip.decompress(raw) if n.endswith(".gz") else raw)
        text = service_text(model, seen)
        if text:
            units.append((n, text))
    return units


def _descriptions(o: object, path: str, out: list[tuple[str, str]]) -> None:
    if isinstance(o, dict):
        for k, v in o.items():
            if k == "description" and isinstance(v, str):
                out.append((path, v))
            else:  # (the parameters every API repeats, alt, key, ..., are dropped as already seen)
                _descriptions(v, f"{path}.{k}" if path else k, out)
    elif isinstance(o, list):
        for v in o:
            _descriptions(v, path, out)


def discovery_docs(ar: Archive) -> list[tuple[str, str]]:
    """Google API reference text from google-api-python-client's discovery documents: the newest version of
    each API, its ``description`` fields (resources, methods, schemas and their properties) with their JSON
    path as a heading, each description once across all APIs."""
    newest: dict[str, tuple[str, str]] = {}
    for n in ar.names:
        if "/discovery_cache/documents/" in n and n.endswith(".json"):
            base = n.rsplit("/", 1)[1][: -len(".json")]
            api = base.split(".")[0]
            if api not in newest or base > newest[api][0]:
                newest[api] = (base, n)
    seen: set[str] = set()
    units = []
    for api in sorted(newest):
        found: list[tuple[str, str]] = []
        _descriptions(json.loads(ar.read(newest[api][1])), "", found)
        lines = []
        for path, doc in found:
            text = " ".join(doc.split())
            if len(text) >= 40 and text not in seen:
                seen.add(text)
                lines.append(f"### {path or 'overview'}\n{text}\n")
        if lines:
            units.append((newest[api][1], "\n".join(lines)))
    return units
