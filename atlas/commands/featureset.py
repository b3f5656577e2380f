"""``atlas featureset``: list, build and plot feature-label sets."""

from __future__ import annotations

import click

from atlas.commands._common import open_store, store_option, time_range, write_output


@click.group()
def featureset() -> None:
    """Feature-label sets: leak-free features and labels built from the metric series."""


@featureset.command("list")
def list_command() -> None:
    """The ready-made sets, with their features and labels."""
    from atlas.data.featureset.presets import PRESETS

    for name, make in PRESETS.items():
        fls = make()
        click.echo(f"{name}: {len(fls.features)} features, labels {', '.join(fls.label_names)}")


def _load(name: str):
    import json
    from pathlib import Path

    from atlas.data.featureset import FeatureLabelSet
    from atlas.data.featureset.presets import PRESETS

    if name in PRESETS:
        return PRESETS[name]()
    if Path(name).is_file():
        return FeatureLabelSet.from_dict(json.loads(Path(name).read_text()))
    import difflib

    close = difflib.get_close_matches(name, list(PRESETS), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise click.BadParameter(f"{name!r} is neither a ready-made set nor a JSON file of one; {hint}ready-made: "
                             f"{', '.join(PRESETS)}", param_hint="SET")


@featureset.command()
@click.argument("name", metavar="SET")
@click.option("--start", required=True, help="First bucket (UTC).")
@click.option("--end", required=True, help="Last bucket (UTC).")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Save plot_data's figure (PNG, PDF).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="Write the frame (.parquet "
              "or .csv).")
@click.option("--no-cache", is_flag=True, help="Build afresh, neither reading nor writing the cache.")
@store_option
def build(name, start, end, plot, output, no_cache, store_url) -> None:
    """Build a set (a ready-made one, or a JSON file of FeatureLabelSet.to_dict()) over a range."""
    import time
    from pathlib import Path

    fls = _load(name)
    start, end = time_range(start, end, empty_ok=False)
    with open_store(store_url, read_only=True) as store:
        began = time.perf_counter()
        frame = fls.build(start, end, store=store, cache=not no_cache)
        seconds = time.perf_counter() - began
        if plot:
            figure = fls.plot_data(start, end, store=store)
            kind = Path(plot).suffix.lstrip(".").lower() or "png"
            write_output(plot, lambda path: figure.savefig(path, dpi=90, format=kind), option="--plot")
    report = frame.attrs.get("report", {})
    click.echo(f"{fls}: {len(frame):,} rows x {frame.shape[1]} columns in {seconds:.2f} s; cleaning: {report}")
    for feature in fls.features:
        click.echo(f"  feature {feature.name}")
    for label in fls.labels:
        click.echo(f"  label   {label.name}")
    if output:
        write_output(output, frame.to_parquet if output.endswith(".parquet") else frame.to_csv)
        click.echo(f"wrote {output}")
    if plot:
        click.echo(f"plotted {plot}")
