#!/usr/bin/env bash
# Label smoothing vs hard targets under 20% symmetric label noise on the embedded digits.
#   bash examples/compare_noise.sh            # EPOCHS=20 by default; PROJECT=runs/examples; SEEDS=0
#   SEEDS=0,1,2 bash examples/compare_noise.sh   # each ε three times: report.md shows mean ± sd over the seeds
# Re-runnable: the dataset step reuses an identical dataset (and refuses a different one), compare reuses finished
# variants and completes an interrupted one.
set -euo pipefail
EPOCHS="${EPOCHS:-20}"
SEEDS="${SEEDS:-0}"
PROJECT="${PROJECT:-runs/examples}"
case "$PROJECT" in /*) ;; *) PROJECT="$PWD/$PROJECT" ;; esac  # absolute: datasets and compare read it alike
YOLO_LS="${YOLO_LS:-yolo-ls}"
$YOLO_LS datasets digits out="$PROJECT/digits-noise20" noise=0.2 noise_kind=symmetric seed=0
$YOLO_LS compare model=yolo11n-cls.yaml data="$PROJECT/digits-noise20" label_smoothing=0,0.1,0.2 \
  seeds="$SEEDS" epochs="$EPOCHS" imgsz=32 batch=64 device=cpu workers=0 project="$PROJECT" name=compare-noise20
echo "report: $PROJECT/compare-noise20/report.md"
