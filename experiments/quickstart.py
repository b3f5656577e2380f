"""The quickstart sweep: 24 small models on the demo's simulated market (bitstamp leads itbit and coinbase).

Each work unit predicts one follower's next one-minute return (down / up, cut by sign) from every exchange's last
return; the simulator planted a lead-lag signal of 0.3, so models should beat the majority baseline.
"""

from atlas.data import FeatureLabelSet, LogReturns
from atlas.data.dataset import ClassLabels
from atlas.infra import ModelSpec, Resources, Search, WorkSpec, WorkUnit

TRAIN = ("2024-01-01 01:00", "2024-01-10 00:00")
TEST = ("2024-01-10 00:10", "2024-01-14 23:00")


def follower(name: str) -> WorkUnit:
    featureset = FeatureLabelSet(
        features=[LogReturns().exchange(e).one_min().lookback(1) for e in ("bitstamp", "itbit", "coinbase")],
        labels=[LogReturns().exchange(name).one_min().lookforward(1)],
        title=f"{name}_next_minute",
    )
    return WorkUnit(
        name=f"{name}_next_minute", featureset=featureset, train=TRAIN, test=TEST, classes=ClassLabels("sign"),
        window=10,
        model_specs=[
            ModelSpec("dnn", "dnn_classifier", {"hidden_units": [[16], [32, 16]], "dropout": [0.0, 0.2],
                                                "learning_rate": [0.001, 0.003]}, fit={"epochs": 10}),
            ModelSpec("logistic", "logistic_classifier", {"l2": [0.0, 0.0001]}, fit={"epochs": 10}),
            ModelSpec("gru", "gru_classifier", {"units": [[8], [16]]}, fit={"epochs": 5}),
        ],
    )


SPEC = WorkSpec(
    name="quickstart",
    work_units=[follower("itbit"), follower("coinbase")],
    search=Search("grid"),
    resources=Resources(cpu=1),
    seed=7,
)
