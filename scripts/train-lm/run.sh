#!/bin/sh
# Runs a train-lm script with Debian's python3-torch under the settings that make it fast here:
#  - jemalloc keeps freed memory (glibc returns every >32 MB tensor to the kernel,
#    and re-faulting it ran elementwise ops 25x slower: 0.15 vs 3.9 Gelem/s measured);
#  - OPENBLAS_CORETYPE unset (some machines set it to an older kernel).
# Usage: scripts/train-lm/run.sh train.py --config main --out ...
here=$(dirname "$0")
script=$1; shift
jemalloc=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
if [ -e "$jemalloc" ]; then
  export LD_PRELOAD="$jemalloc" MALLOC_CONF="dirty_decay_ms:-1,muzzy_decay_ms:-1"
fi
unset OPENBLAS_CORETYPE
exec /usr/bin/python3 "$here/$script" "$@"
