"""Figures of trained models, drawn with matplotlib's object API on Agg canvases (no pyplot, no global state):
a trial's baseball card and a sweep's overview tables. matplotlib is imported when a figure is drawn."""

from atlas.stats._figures._card import card, card_png
from atlas.stats._figures._overview import overview, overview_png
from atlas.stats._figures._window import is_degenerate

__all__ = ["card", "card_png", "is_degenerate", "overview", "overview_png"]
