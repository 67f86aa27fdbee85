"""The pure core: the argument table (``args``), ε schedules (``schedules``, ``auto``), the smoothed losses
(``losses``), online soft labels (``online``), tuning objectives (``objective``) and run-file helpers (``files``,
``epoch_bins``). Nothing here imports Ultralytics; nothing below ``args`` imports it."""
