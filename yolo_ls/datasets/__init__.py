"""Offline datasets for yolo-ls examples, tests and benchmarks (importing them loads neither Ultralytics nor torch)."""

from yolo_ls.datasets.digits import default_root, digits, digits_detection, resolve_data
from yolo_ls.datasets.names import DATASET_ALIASES
from yolo_ls.datasets.noise import NOISE_KINDS, add_label_noise

__all__ = (
    "DATASET_ALIASES",
    "NOISE_KINDS",
    "add_label_noise",
    "default_root",
    "digits",
    "digits_detection",
    "resolve_data",
)
