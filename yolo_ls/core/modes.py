"""The smoothing modes (``ls_mode``) and the tasks: one vocabulary, read by the losses and the argument table."""

CLASSIFY_MODES = ("uniform", "exclusive", "prior", "margin", "online", "matrix")
DETECT_MODES = ("fg", "all", "positive", "matrix")
MODES = tuple(dict.fromkeys(("auto", *CLASSIFY_MODES, *DETECT_MODES)))  # ls_mode's choices (matrix serves both)
DETECT_TASKS = ("detect", "segment", "pose", "obb")
TASKS = ("classify", *DETECT_TASKS)
