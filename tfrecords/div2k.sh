#!/usr/bin/env bash
# Builds DIV2K TFRecords (see README.md): bash tfrecords/div2k.sh DIV2K_ROOT OUT_ROOT [SCALES]
# DIV2K_ROOT holds DIV2K_{train,valid}_HR and DIV2K_{train,valid}_LR_bicubic/X{2,3,4}.
# Re-running resumes: finished shards are kept. OUT_ROOT may be a gs:// path.
set -euo pipefail
root=${1:?usage: div2k.sh DIV2K_ROOT OUT_ROOT [SCALES]}
out=${2:?usage: div2k.sh DIV2K_ROOT OUT_ROOT [SCALES]}
scales=${3:-2 3 4}
# shellcheck disable=SC2086
sr-tf make-tfrecords "$root/DIV2K_train_HR" "$out/div2k-train" --lr "$root/DIV2K_train_LR_bicubic" \
    --scales $scales --sub-image 480 --step 240 --num-shards 64 --workers 2
# shellcheck disable=SC2086
sr-tf make-tfrecords "$root/DIV2K_valid_HR" "$out/div2k-valid" --lr "$root/DIV2K_valid_LR_bicubic" \
    --scales $scales --num-shards 4 --prefix valid
sr-tf make-tfrecords "$root/DIV2K_train_HR" "$out/div2k-train-hr" --sub-image 480 --step 240 --num-shards 64 --workers 2
sr-tf make-tfrecords --verify "$out/div2k-train"
