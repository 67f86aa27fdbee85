"""The embedded datasets' names (``data=digits``, ``data=digits-det``)."""

DATASET_ALIASES = ("digits", "digits-det")
