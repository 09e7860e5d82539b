"""Holdout's REST API (under /api/) and the Kaggle CLI protocol (under /api/v1/)."""
