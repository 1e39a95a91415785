"""Datasets, their builders, and how they are organized and batched."""
