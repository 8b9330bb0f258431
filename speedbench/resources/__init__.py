"""Data shipped inside the package: engine presets and the bundled prompt splits.

They live here (not at the repository root) so that a wheel or a site-packages install has them too;
everything reads them through :func:`resource_path`, never by walking up from a module's folder.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path


def resource_path(*parts: str) -> Path:
    """A file or folder under ``speedbench/resources/`` as a real path (installed or checkout alike)."""
    root = resources.files(__name__)
    # The package is always installed unzipped (setuptools wheels, editable checkouts), so the
    # Traversable is a real folder; a zipped install would fail here loudly instead of reading nothing.
    path = Path(str(root.joinpath(*parts)))
    return path


PRESETS_DIR = resource_path("presets")
DATASETS_DIR = resource_path("datasets")
