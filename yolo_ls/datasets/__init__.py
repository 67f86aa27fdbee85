"""Offline datasets for yolo-ls examples, tests and benchmarks."""

from yolo_ls.datasets.digits import DATASET_ALIASES, default_root, digits, digits_detection, resolve_data

__all__ = ("DATASET_ALIASES", "default_root", "digits", "digits_detection", "resolve_data")
