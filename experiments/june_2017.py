"""A port of the original Atlas's June 2017 work spec: 48 three-class DNN classifiers across 12 work units.

Three exchanges' next-move labels at four horizons (1, 5, 10 and 30 minutes) make the 12 work units; each trains
the same four DNN shapes on strong down / flat / strong up classes cut at the training labels' 33rd and 67th
percentiles. It reads June 2017 one-minute metrics: import a GDS database for that month first
(`atlas data import gds --url ... --start 2017-06-01 --end 2017-07-01`, then `atlas data metrics`).
"""

from atlas.data import FeatureLabelSet, InterExchangeSpread, LogReturns, OrderbookImbalance, Volume
from atlas.data.dataset import ClassLabels
from atlas.infra import ModelSpec, Resources, Search, WorkSpec, WorkUnit

EXCHANGES = ("bitstamp", "itbit", "coinbase")
HORIZONS = (1, 5, 10, 30)
TRAIN = ("2017-06-01 01:00", "2017-06-21 00:00")
TEST = ("2017-06-21 01:00", "2017-06-30 22:00")
SHAPES = {"wide": [256], "deep": [128, 64, 32], "medium": [64, 32], "small": [32]}


def unit(target: str, horizon: int) -> WorkUnit:
    features = [LogReturns().exchange(e).one_min().lookback(n) for e in EXCHANGES for n in (1, 5)]
    features += [OrderbookImbalance().exchange(target).one_min().slippage(10),
                 Volume().exchange(target).one_min().rolling_mean(5)]
    features += [InterExchangeSpread(target, other).one_min() for other in EXCHANGES if other != target]
    featureset = FeatureLabelSet(features=features,
                                 labels=[LogReturns().exchange(target).one_min().lookforward(horizon)],
                                 title=f"{target}_{horizon}min")
    return WorkUnit(
        name=f"{target}_{horizon}min", featureset=featureset, train=TRAIN, test=TEST,
        classes=ClassLabels("percentile", (0.33, 0.67)), balance="class_weights",
        model_specs=[ModelSpec(name, "dnn_classifier", {"hidden_units": units, "dropout": 0.2},
                               fit={"epochs": 30, "patience": 3}) for name, units in SHAPES.items()],
    )


SPEC = WorkSpec(
    name="june_2017",
    work_units=[unit(target, horizon) for target in EXCHANGES for horizon in HORIZONS],
    search=Search("grid"),
    resources=Resources(cpu=1, gpu=0.25),
    seed=2017,
)
