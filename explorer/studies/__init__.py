"""Recipes of the tutorials and studies: settings, training recipes, shipped checkpoints.

Studies sit above ``training`` and ``hypotheses`` and below ``views``: a recipe may train and
test, never draw.
"""
