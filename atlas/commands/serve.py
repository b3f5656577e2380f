"""``atlas serve``: the model runner, serving registered models' predictions into Redis."""

from __future__ import annotations

import click

from atlas.commands._common import command_settings, store_option, tracking_option


@click.command()
@click.argument("models", nargs=-1, required=True, metavar="NAME[@ALIAS]...")
@click.option("--alias", default="production", show_default=True,
              help="The alias of each NAME given without one.")
@click.option("--feed", type=click.Choice(["store", "redis"]), default="store", show_default=True,
              help="store: replay the market store's series; redis: Gryphon's live order books in Redis.")
@click.option("--redis-url", default=None, metavar="URL", help="Where to publish (and, with --feed redis, where "
              "GDS keeps the order books) [env REDIS_URL; default redis://127.0.0.1:6379/0].")
@click.option("--start", default=None, metavar="TIME", help="Replay: the first bucket [default: --buckets before "
              "the store's last].")
@click.option("--end", default=None, metavar="TIME", help="Replay: the last bucket [default: the store's last].")
@click.option("--buckets", default=None, type=click.IntRange(min=1), metavar="N",
              help="Serve N buckets, then stop (replay: the last N buckets of the store, unless --start is given).")
@click.option("--speed", default=None, type=click.FloatRange(min=0, min_open=True), metavar="X",
              help="Replay paced at X times real time [default: as fast as possible].")
@click.option("--ttl", default=None, type=click.FloatRange(min=0.001), metavar="SECONDS",
              help="Expiry of the latest prediction in Redis [default: three bucket widths].")
@click.option("--gryphon-key/--no-gryphon-key", default=False, show_default=True,
              help="Also set Gryphon's ML_PREDICTION key (1 up, 0 otherwise) from the first model.")
@click.option("--fail-on-drift", is_flag=True, help="Exit with status 3 when a model's live accuracy falls below "
              "the bound its test window implies.")
@click.option("--swap-every", default=10.0, show_default=True, type=click.FloatRange(min=0), metavar="SECONDS",
              help="How often to check whether an alias moved (0: never).")
@click.option("--min-scored", default=100, show_default=True, type=click.IntRange(min=1), metavar="N",
              help="Live predictions scored before the drift alarm may sound.")
@store_option
@tracking_option
def serve(models, alias, feed, redis_url, start, end, buckets, speed, ttl, gryphon_key, fail_on_drift,
          swap_every, min_scored, store_url, tracking_uri) -> None:
    """Serve NAME@ALIAS (several at once: a challenger in shadow beside production) into Redis.

    At each bucket close the runner computes the features from the feed, predicts and writes the prediction to
    Redis in one round trip (README, "The Redis schema"). Ctrl-C or SIGTERM finishes the bucket in hand and exits.
    """
    import logging
    import signal

    import redis as redis_py

    from atlas.commands._common import open_store, time_range
    from atlas.config import mask_url
    from atlas.data.buckets import parse_width
    from atlas.exceptions import ConfigError
    from serving.feeds import RedisFeed, StoreReplay
    from serving.publisher import Publisher
    from serving.registry import Registry
    from serving.runner import ModelRunner, Target
    from serving.session import Session

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = command_settings(store_url, tracking_uri, read_only=True)
    url = redis_url or settings.serving.redis_url
    targets = [Target.parse(m, alias) for m in models]
    registry = Registry(settings.tracking.mlflow_uri)
    refs = [registry.resolve(t.name, t.alias) for t in targets]
    artifacts = [registry.load(r) for r in refs]
    bucket = artifacts[0].featureset.bucket
    width = parse_width(bucket)
    names = sorted({k.name for a in artifacts for f in a.featureset.features for k in f.series()}
                   | {k.name for a in artifacts for f in a.featureset.labels for k in f.series()})
    store = open_store(settings.store.url, read_only=True)
    if feed == "store":
        last = _last_bucket(store, names)
        first, stop = time_range(start, end)
        stop = stop if stop is not None else last
        if first is None:
            first = stop - ((buckets or 200) - 1) * width
        source = StoreReplay(store, names, start=first, end=stop, bucket=bucket, speed=speed)
    else:
        client = redis_py.Redis.from_url(url, socket_timeout=5)
        feature_names = sorted({k.name for a in artifacts for f in a.featureset.features for k in f.series()})
        source = RedisFeed(client, names, bucket=bucket, store=store)
        lacking = source.can_serve(feature_names)
        if lacking:
            msg = (f"--feed redis gives order-book metrics only; {', '.join(map(str, targets))} read {lacking}; "
                   f"serve from the store with --feed store")
            raise ConfigError(msg)
    publisher = Publisher(url, ttl_seconds=ttl or 3 * width.total_seconds(), gryphon_key=gryphon_key)
    try:
        publisher.check()
    except ConnectionError as error:
        msg = f"Redis at {mask_url(url)} refuses connections ({error}); start redis-server or set --redis-url"
        raise ConfigError(msg) from None
    session = Session(settings.tracking.mlflow_uri, targets, feed=feed)
    runner = ModelRunner(targets, registry=registry, feed=source, publisher=publisher, swap_every=swap_every,
                         fail_on_drift=fail_on_drift, session=session, min_scored=min_scored)
    runner.start()
    previous = signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    try:
        status = runner.run(max_buckets=buckets if feed == "redis" else None)
    except KeyboardInterrupt:
        runner.stop()
        status = 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    for target, counts in runner.counts.items():
        served = runner.served[target]
        stats = served.scorer.statistics()
        again = f" ({counts.already_published} already in Redis: not written again)" if counts.already_published \
            else ""
        click.echo(f"{target} (version {served.ref.version}): {runner.buckets} buckets, {counts.published} published"
                   f"{again}, {counts.incomplete} without complete features, {counts.gaps} windows across a gap, "
                   f"{counts.stale} stale, {counts.errors} errors, "
                   f"{counts.swaps} swaps; live accuracy {stats['accuracy']:.4f} over {stats['window']} scored "
                   f"(lift {stats['lift']:+.4f}, net return {stats['net_return']:+.5f})")
    click.echo(f"Published to {mask_url(url)} as atlas:v1:prediction:NAME; session run {session.run_id}")
    if status:
        raise SystemExit(status)


def _last_bucket(store, names):
    import pandas as pd

    from atlas.exceptions import MissingDataError

    summary = store.series_summary()
    rows = summary[summary["series"].isin(names)]
    if rows.empty:
        msg = f"the store holds none of the series the models read ({', '.join(names[:4])} ...); run `atlas data metrics`"
        raise MissingDataError(msg)
    return pd.Timestamp(rows["last"].min())
