"""FeatureLabelSet: features and labels that build leak-free train and test data, cached, and plot themselves."""

from atlas.data.featureset._cache import FrameCache
from atlas.data.featureset._frame import BuildReport
from atlas.data.featureset._set import FeatureLabelSet

__all__ = ["BuildReport", "FeatureLabelSet", "FrameCache"]
