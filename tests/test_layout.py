"""The test tree mirrors the package (see tests/README.md): a test lives beside the code it tests, so a
`tests/unit`-style grab-bag, or a folder named after nothing in speedbench/, fails here."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
PACKAGE = TESTS.parent / "speedbench"
# cross-cutting by design: they drive the whole tool (real engine, faults, wheel) rather than one package
CROSS_CUTTING = {"integration", "reliability", "packaging"}
NOT_TESTS = {"fixtures", "__pycache__"}  # data the tests read; Python's byte-code cache
TOP_LEVEL_TESTS = {"test_layout.py"}  # checks of the tree itself; everything else goes in a folder


def mirror_names(package: Path) -> set[str]:
    """The folder names a test folder may take: speedbench's sub-packages and its top-level modules."""
    packages = {p.parent.name for p in package.glob("*/__init__.py")}
    modules = {p.stem for p in package.glob("*.py") if p.name != "__init__.py"}
    return packages | modules


def layout_problems(tests: Path, package: Path) -> list[str]:
    allowed = mirror_names(package) | CROSS_CUTTING
    problems = []
    for d in sorted(p for p in tests.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if d.name in NOT_TESTS:
            continue
        if d.name == "unit":
            problems.append("tests/unit: put each test in the folder of the package it tests")
        elif d.name not in allowed:
            problems.append(f"tests/{d.name}: mirrors nothing in speedbench/ and is not one of {sorted(CROSS_CUTTING)}")
        if not (d / "__init__.py").is_file():
            # without it, two test files with one name in two folders collide at collection
            problems.append(f"tests/{d.name}: no __init__.py")
    for f in sorted(tests.glob("test_*.py")):
        if f.name not in TOP_LEVEL_TESTS:
            problems.append(f"tests/{f.name}: move it to the folder of the package it tests")
    return problems


def test_the_test_tree_mirrors_the_package():
    assert layout_problems(TESTS, PACKAGE) == []


def test_a_grab_bag_or_an_unmirrored_folder_is_reported(tmp_path):
    pkg = tmp_path / "speedbench"
    for sub in ("metrics", "load"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").touch()
    (pkg / "config.py").touch()
    tests = tmp_path / "tests"
    for sub in ("metrics", "config", "integration", "unit", "misc"):
        (tests / sub).mkdir(parents=True)
        (tests / sub / "__init__.py").touch()
    (tests / "fixtures").mkdir()
    (tests / "load").mkdir()  # a mirror, but without __init__.py
    (tests / "test_layout.py").touch()
    (tests / "test_stray.py").touch()
    assert layout_problems(tests, pkg) == [
        "tests/load: no __init__.py",
        "tests/misc: mirrors nothing in speedbench/ and is not one of ['integration', 'packaging', 'reliability']",
        "tests/unit: put each test in the folder of the package it tests",
        "tests/test_stray.py: move it to the folder of the package it tests",
    ]


def home_cache_paths(tests: Path) -> list[str]:
    """Test files that find a prepared model or cache under ~/.cache themselves: on a fresh machine (CI
    starts SPEEDBENCH_HOME empty) that path is not where `make test` put it, so their tests skip silently.
    One place resolves it: tests/conftest.py (GEMMA_DIR, ENGINE_PYTHON) from the variables make test sets."""
    return sorted(
        str(f.relative_to(tests))
        for f in tests.rglob("*.py")
        if f.name != "test_layout.py" and f != tests / "conftest.py" and '".cache"' in f.read_text(encoding="utf-8")
    )


def test_prepared_paths_come_from_the_root_conftest_only():
    # tests/data/conftest.py looked in ~/.cache/speedbench: 23 data tests skipped in a fresh CI run
    assert home_cache_paths(TESTS) == []
