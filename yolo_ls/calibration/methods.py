"""The post-hoc calibration methods by score type (no torch: the argument table and the CLI read them)."""

SOFTMAX_METHODS = ("temperature", "vector", "matrix")  # classification: softmax over class logits
SIGMOID_METHODS = ("temperature", "platt")  # detection box scores: a sigmoid per class logit
CALIBRATE_CHOICES = ("off", *dict.fromkeys((*SOFTMAX_METHODS, *SIGMOID_METHODS)))
