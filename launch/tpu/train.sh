#!/bin/bash
# Multi-host rawjax training on a Cloud TPU VM slice (v4-32, v5e-16, ...):
# runs the same launch.train command on every worker of the slice.
#
#   TPU_NAME=my-slice ZONE=us-central2-b launch/tpu/train.sh CONFIG WORKDIR [--config.key=value ...]
#   SETUP=1 TPU_NAME=... ZONE=... launch/tpu/train.sh ...   # install first
#
# How it fits together:
#  * `gcloud compute tpus tpu-vm ssh --worker=all` starts one process per TPU
#    host. `--distributed` makes launch.train call jax.distributed.initialize(),
#    which reads the slice's topology from the TPU metadata server (no
#    addresses needed). Each process reads its own slice of every batch;
#    process 0 alone logs.
#  * The repository must be at REPO_DIR on every worker (clone it there, or
#    copy it with `gcloud compute tpus tpu-vm scp --worker=all`). SETUP=1
#    installs rawjax and JAX for TPU into the workers' Python first.
#  * WORKDIR is a local path that every worker sees as the same directory,
#    e.g. a Cloud Storage bucket mounted with gcsfuse at the same path on all
#    workers, or a Filestore share: all processes take part in checkpointing.
#  * Preemption (spot/preemptible TPUs) sends SIGTERM; JAX's preemption
#    service makes every process save at the same step and exit. Run the
#    same command again (after recreating the slice) to resume.
set -euo pipefail

CONFIG=${1:?usage: launch/tpu/train.sh CONFIG WORKDIR [flags...]}
WORKDIR=${2:?usage: launch/tpu/train.sh CONFIG WORKDIR [flags...]}
shift 2
: "${TPU_NAME:?set TPU_NAME to the TPU VM slice name}"
: "${ZONE:?set ZONE to the slice zone}"
REPO_DIR=${REPO_DIR:-'~/rawjax'}
PYTHON=${PYTHON:-python3}

on_all_workers() {
  gcloud compute tpus tpu-vm ssh "${TPU_NAME}" --zone="${ZONE}" --worker=all \
    --command="$1"
}

if [[ "${SETUP:-0}" == 1 ]]; then
  on_all_workers "cd ${REPO_DIR} && ${PYTHON} -m pip install -U 'jax[tpu]' -e ."
fi

# Quote the extra flags once for the remote shell.
EXTRA=""
for flag in "$@"; do
  EXTRA+=" $(printf '%q' "${flag}")"
done
on_all_workers "cd ${REPO_DIR} && ${PYTHON} -m launch.train --distributed \
  --config=$(printf '%q' "${CONFIG}") --workdir=$(printf '%q' "${WORKDIR}")${EXTRA}"
