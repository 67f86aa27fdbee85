"""``model.tune()`` with plugin arguments: the built-in Tuner (``tuner``) and Ray Tune (``ray_tune``)."""
