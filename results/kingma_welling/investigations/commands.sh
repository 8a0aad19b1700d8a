#!/bin/sh
# The investigations' training runs, one after the other, one core each
# (run from the repository root; OUT is where the run directories go).
# Each line: name, then the flags given to reproductions/reproduce_kingma_welling.py
# besides --mnist-dir, --frey-dir and --out OUT/<name>. A run resumes where it stopped
# (frey-ws-z20-lr0.02 was first run to 1e6, then extended to 1e7).
OUT=${OUT:-/work/persist/papers/inv}
MNIST=${MNIST:-/work/shared/data/mnist}
FREY=${FREY:-/work/shared/data/frey}
export OPENBLAS_NUM_THREADS=1
export PYTHONPATH="$PWD"            # this checkout's numpyvae, not an installed one
while read -r name flags; do
    [ -z "$name" ] && continue
    [ -f "$OUT/$name/results.json" ] && [ -f "$OUT/$name/done" ] && continue
    mkdir -p "$OUT/$name"
    echo "== $name: $flags" >> "$OUT/$name/run.log"
    /usr/bin/time -f "wall %e s" /work/venv/bin/python reproductions/reproduce_kingma_welling.py \
        --mnist-dir "$MNIST" --frey-dir "$FREY" --out "$OUT/$name" $flags \
        >> "$OUT/$name/run.log" 2>&1 && touch "$OUT/$name/done"
done <<'RUNS'
mnist-aevb-z3-lr0.02     --only mnist:aevb:3 --samples mnist=1e6 --step-sizes 0.02
mnist-aevb-z3-init0.1    --only mnist:aevb:3 --samples mnist=1e6 --init-std 0.1
mnist-aevb-z3-threshold  --only mnist:aevb:3 --samples mnist=1e6 --mnist-binarize threshold
frey-ws-z20-seed1        --only frey:wake-sleep:20 --samples frey=1e6 --seed 1
frey-ws-z20-seed2        --only frey:wake-sleep:20 --samples frey=1e6 --seed 2
frey-ws-z20-noprior      --only frey:wake-sleep:20 --samples frey=1e6 --no-weight-prior
frey-aevb-z5-lr0.02      --only frey:aevb:5 --samples frey=1e6 --step-sizes 0.02
frey-aevb-z5-init0.1     --only frey:aevb:5 --samples frey=1e6 --init-std 0.1
frey-aevb-z5-noprior     --only frey:aevb:5 --samples frey=1e6 --no-weight-prior
frey-ws-z20-lr0.02       --only frey:wake-sleep:20 --samples frey=1e7 --step-sizes 0.02
mnist-aevb-z20-init0.1   --only mnist:aevb:20 --samples mnist=1e6 --init-std 0.1
mnist-ws-z200-init0.1    --only mnist:wake-sleep:200 --samples mnist=1e6 --init-std 0.1
RUNS
