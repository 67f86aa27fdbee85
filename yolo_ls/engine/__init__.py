"""The Ultralytics glue: plugin trainers (``trainers``), the one detection-loss injection point (``inject``), the
``auto`` controller, release differences (``compat``), crash-safe checkpoints and the callbacks (``callbacks``)."""
