# The two-layer VAE (k = 1) lag: the committed run's protocol with one choice changed, each run on one
# core from the repository root (bash); OUT= the directory for the runs (default runs/two-layer-vae-lag).
# The 13-epoch runs cover the IWAE schedule's first three stages (1 + 3 + 9 epochs); the warm-up run
# goes on with --resume to the ends of the fourth and fifth (40 and 121 epochs).
set -e
OUT=${OUT:-runs/two-layer-vae-lag}
COMMON="--data-dir ../shared/data/mnist --hidden 200,200 --latent-dim 100 --stochastic-layers 2 \
  --activation tanh --binarize dynamic --lr-schedule iwae --adam-eps 1e-4 --batch-size 20 --eval-k 0"
export OPENBLAS_NUM_THREADS=1
# the ELBO with the KL sampled (estimator A), k = 1: the committed run's objective (the IWAE bound at k = 1)
python demos/train_mnist.py $COMMON --objective elbo-mc --k 1 --epochs 1 --out $OUT/elbo-mc-k1
# less variance: the ELBO averaged over 5 samples (the paper's VAE, k = 5)
python demos/train_mnist.py $COMMON --objective elbo-mc --k 5 --epochs 13 --out $OUT/elbo-mc-k5
# less variance: the top layer's KL in closed form
python demos/train_mnist.py $COMMON --objective elbo --k 1 --epochs 13 --out $OUT/elbo-k1
# less KL pressure at the start: the KL weight raised from 0 to 1 over the first 4 epochs
python demos/train_mnist.py $COMMON --objective elbo-mc --k 1 --kl-warmup 4 --epochs 13 --out $OUT/warmup4-k1
python demos/train_mnist.py $COMMON --objective elbo-mc --k 1 --kl-warmup 4 --epochs 40 --resume --out $OUT/warmup4-k1
python demos/train_mnist.py $COMMON --objective elbo-mc --k 1 --kl-warmup 4 --epochs 121 --resume --out $OUT/warmup4-k1
# the IWAE authors' start: the decoder's output biases at the logit of the mean training pixel
# (the runs here trained with --eval-k 0 and were resumed with --eval-k 5000 for the final log p(x))
python demos/train_mnist.py $COMMON --objective iwae --k 1 --output-bias data --epochs 121 --eval-k 5000 \
  --out $OUT/output-bias-k1
# the same start for the one-layer VAE (784-200-200-50; trained to 13 epochs, then resumed to 121)
python demos/train_mnist.py ${COMMON/--latent-dim 100 --stochastic-layers 2/--latent-dim 50} --objective iwae \
  --k 1 --output-bias data --epochs 121 --eval-k 5000 --out $OUT/one-layer-output-bias-k1
# and for the one-layer IWAE (k = 5)
python demos/train_mnist.py ${COMMON/--latent-dim 100 --stochastic-layers 2/--latent-dim 50} --objective iwae \
  --k 5 --output-bias data --epochs 121 --eval-k 5000 --out $OUT/one-layer-output-bias-k5
