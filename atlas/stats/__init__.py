"""Statistics of trained models: scores on held-out data, compared with the baselines every model must beat."""

from atlas.stats._scores import classification_scores, regression_scores

__all__ = ["classification_scores", "regression_scores"]
