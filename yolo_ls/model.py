"""Drop-in ``YOLO``: the stock Ultralytics model whose task map points at the yolo-ls trainers."""

from __future__ import annotations

from typing import Any

from ultralytics import YOLO as _UltralyticsYOLO

from yolo_ls.datasets import resolve_data
from yolo_ls.trainers import TRAINERS


class YOLO(_UltralyticsYOLO):
    """``ultralytics.YOLO`` with label smoothing that reaches the loss.

    Examples:
        >>> from yolo_ls import YOLO
        >>> model = YOLO("yolo11n-cls.yaml")
        >>> model.train(data="digits", epochs=3, imgsz=32, label_smoothing=0.1)
    """

    @property
    def task_map(self) -> dict[str, dict[str, Any]]:
        """The stock task map with the yolo-ls trainers for classify, detect, segment, pose and obb."""
        task_map = super().task_map
        for task, trainer in TRAINERS.items():
            if task in task_map:
                task_map[task] = {**task_map[task], "trainer": trainer}
        return task_map

    def val(self, validator: Any = None, **kwargs: Any) -> Any:
        """Validate as Ultralytics does; also accepts the embedded dataset names (``data="digits"``)."""
        if "data" in kwargs:
            kwargs["data"] = resolve_data(kwargs["data"])
        return super().val(validator=validator, **kwargs)
