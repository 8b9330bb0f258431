"""Reading results folders: report, compare, quality, recommend."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import click

from speedbench.cli import _fail, main
from speedbench.config import ConfigError
from speedbench.quality.render import QUALITY_COLUMNS, RECOMMEND_COLUMNS, VALIDATION_COLUMNS, render_rows

# Lazy in the commands (rule: speedbench.cli): report.load/render ~145 ms, quality_report ~195 ms,
# gamma_report ~150 ms, results ~135 ms (numpy through the metrics).

_FORMATS = ["table", "md", "csv", "json", "html"]


@contextlib.contextmanager
def _one_line(what) -> Iterator[None]:
    """A results folder that cannot be read or a destination that cannot be written: one line, exit 2."""
    from speedbench.report.load import ReportError

    try:
        yield
    except (ReportError, ConfigError) as e:
        _fail(str(e), 2)
    except OSError as e:  # read-only folder or --out, a file in the way
        _fail(f"cannot write {e.filename or what}: {e.strerror or e}", 2)
    except (KeyError, TypeError, AttributeError, ValueError) as e:  # fields missing or of the wrong type
        _fail(f"damaged results in {what}: {type(e).__name__}: {e}", 2)


def _emit_report(results, fmt, out, kind, labels=None, allow_generation_mismatch=False) -> None:
    from speedbench.report.render import report_output

    with _one_line(", ".join(results)):
        res = report_output(
            results,
            fmt,
            Path(out) if out else None,
            kind,
            labels.split(",") if labels else None,
            allow_generation_mismatch=allow_generation_mismatch,
        )
    for w in res.warnings:
        click.echo(f"speedbench: warning: {w}", err=True)
    if res.text is not None:
        click.echo(res.text, nl=not res.text.endswith("\n"))
    for p in res.written:
        click.echo(f"wrote {p}", err=True)


@main.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(_FORMATS), default="table", show_default=True)
@click.option(
    "--out",
    type=click.Path(),
    help="File, or folder (report + plots/*.png + CSV/parquet tables). "
    "html defaults to <first results folder>/report.html.",
)
def report(results, fmt, out) -> None:
    """Report one or more results folders: speedups, crossover, per-category acceptance, plots."""
    _emit_report(results, fmt, out, "report")


@main.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(_FORMATS), default="table", show_default=True)
@click.option("--out", type=click.Path(), help="File or folder, as for `report`.")
@click.option("--labels", help="Comma-separated names for the runs, in order (default: folder names).")
@click.option(
    "--allow-generation-mismatch",
    is_flag=True,
    help="Compare although output length, EOS policy, sampling or engine version differ (said in the report).",
)
def compare(results, fmt, out, labels, allow_generation_mismatch) -> None:
    """Engines, SD methods or draft lengths side by side; refuses runs whose prompt token ids or generation
    settings (output length, EOS policy, sampling, engine version) differ."""
    if len(results) < 2:
        _fail("compare needs at least two results folders", 2)
    if labels and len(labels.split(",")) != len(results):
        _fail(f"--labels has {len(labels.split(','))} names for {len(results)} results folders", 2)
    _emit_report(results, fmt, out, "compare", labels, allow_generation_mismatch)


@main.command()
@click.argument("results", type=click.Path(exists=True, file_okay=False))
@click.option("--bertscore", is_flag=True, help="Also BERTScore (offline; default model: packaged all-MiniLM-L6-v2).")
@click.option("--bertscore-model", type=click.Path(exists=True, file_okay=False), help="Local HF encoder directory.")
@click.option("--bertscore-layers", type=int, help="Encoder layer BERTScore reads (default: the model's last).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def quality(results, bertscore, bertscore_model, bertscore_layers, fmt) -> None:
    """Equivalence of SD-on outputs to SD off, next to AL, and BLEU/ROUGE-L/BERTScore; writes quality.json."""
    from speedbench.quality.quality_report import QualityError, write_quality

    _need_results(results)
    with _one_line(results):
        try:
            out = write_quality(
                results,
                bertscore=bertscore,
                bertscore_model=bertscore_model,
                bertscore_layers=bertscore_layers,
                strict=True,
            )
        except QualityError as e:
            _fail(str(e), 2)
    render_rows(out, fmt, "quality (equivalence to SD off, scores)", QUALITY_COLUMNS)


@main.command()
@click.argument("results", type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--validation", is_flag=True, help="Also print the model against the measured draft lengths.")
def recommend(results, fmt, validation) -> None:
    """Draft length per category and concurrency with its modeled speedup; writes recommendation.json."""
    from speedbench.quality.gamma_report import write_gamma
    from speedbench.quality.points import QualityError
    from speedbench.results import ResultsError

    _need_results(results)
    with _one_line(results):
        try:  # nothing to model, records missing, a damaged manifest: the true reason, exit 2 (as `quality`)
            rec, val = write_gamma(results, strict=True)
        except (QualityError, ResultsError) as e:
            _fail(str(e), 2)
    if fmt == "json" and validation:
        click.echo(json.dumps({"recommendation": rec, "validation": val}, indent=2, default=str))
        return
    if validation:
        render_rows(val, fmt, "gamma model vs measurement", VALIDATION_COLUMNS)
    render_rows(rec, fmt, "draft-length recommendation", RECOMMEND_COLUMNS)


def _need_results(path: str) -> None:
    from speedbench.results import ResultsDir, ResultsError

    try:
        ResultsDir.open(path)
    except ResultsError as e:
        _fail(str(e), 2)
