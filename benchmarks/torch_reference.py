"""The IWAE step of benchmarks/iwae_step.py beside PyTorch's, for the issue's comparison.

    pip install torch==2.13.0        # in a virtualenv of its own: not a numpyvae dependency
    PYTHONPATH=. OPENBLAS_NUM_THREADS=1 python benchmarks/torch_reference.py --data-dir ../shared/data/mnist

PyTorch is not a dependency of numpyvae and nothing else imports it; this
script exits with a message where it is not installed.  For each setting of
iwae_step.py it times, alternately in rounds (medians, one thread each):

  numpyvae   trainer.TrainingStep (as iwae_step.py)
  products   numpyvae's matrix products alone (matmul_floor.py, NumPy/OpenBLAS)
  torch      the same model and step in PyTorch with autograd (one-layer model:
             gather, dynamic binarization, the IWAE loss, backward, Adam eps 1e-4)
  torch mm   the same matrix products as torch.matmul calls (PyTorch's BLAS)

and prints numpyvae's ratio to both product floors.
"""

import argparse
import math
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # read when numpy loads: docs/benchmarks.md

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import alternate, iwae_step_function, load_data  # noqa: E402
from iwae_step import SETTINGS, paper_model  # noqa: E402
from matmul_floor import training_step_jobs, training_step_products  # noqa: E402

import numpy as np  # noqa: E402


def torch_products(torch, jobs):
    tensors = [(torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out))
               for a, b, out in jobs]

    def run():
        for a, b, out in tensors:
            torch.matmul(a, b, out=out)
    return run


def torch_one_layer_step(torch, x_train, batch, k, seed=0):
    """The 784-200-200-50 tanh IWAE step in PyTorch (autograd, torch.optim.Adam)."""
    nn = torch.nn
    torch.manual_seed(seed)
    encoder = nn.Sequential(nn.Linear(784, 200), nn.Tanh(), nn.Linear(200, 200), nn.Tanh(),
                            nn.Linear(200, 100))
    decoder = nn.Sequential(nn.Linear(50, 200), nn.Tanh(), nn.Linear(200, 200), nn.Tanh(),
                            nn.Linear(200, 784))
    params = list(encoder.parameters()) + list(decoder.parameters())
    optimizer = torch.optim.Adam(params, lr=1e-3, eps=1e-4)
    data = torch.from_numpy(x_train)
    perm = torch.randperm(data.shape[0])
    log_2pi = math.log(2 * math.pi)
    state = {"i": 0}

    def step():
        i = state["i"] % (data.shape[0] // batch)
        state["i"] += 1
        pixels = data[perm[i * batch:(i + 1) * batch]].float()
        x = (torch.randint(0, 255, pixels.shape).float() < pixels).float()   # dynamic binarization
        h = encoder(x)
        mu, logvar = h[:, :50], h[:, 50:]
        eps = torch.randn(k, batch, 50)
        z = mu + torch.exp(0.5 * logvar) * eps
        logits = decoder(z)
        logpx = -nn.functional.binary_cross_entropy_with_logits(
            logits, x.expand(k, -1, -1), reduction="none").sum(-1)
        logpz = -0.5 * (z * z + log_2pi).sum(-1)
        logq = -0.5 * (eps * eps + logvar + log_2pi).sum(-1)
        logw = logpx + logpz - logq
        loss = -(torch.logsumexp(logw, 0) - math.log(k)).mean()
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        optimizer.step()
    return step


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", help="MNIST IDX files (else random images)")
    p.add_argument("--repeats", type=int, default=500, help="steps timed per setting")
    args = p.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed here (it is no dependency of numpyvae): "
              "pip install torch==2.13.0 in a virtualenv of its own to run this comparison")
        return
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the shared file's known md5 note
        x_train = load_data(args.data_dir).x_train
    print(f"numpyvae against PyTorch {torch.__version__}, one thread each "
          f"(OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}), "
          f"load average {os.getloadavg()[0]:.2f}; medians of {args.repeats} steps in 5 rounds, ms")
    print(f"   {'model':10s} {'batch':>5s} {'k':>3s} {'numpyvae':>9s} {'products':>9s} "
          f"{'torch':>7s} {'torch mm':>9s} {'/products':>10s} {'/torch mm':>10s}")
    for layers, batch, k in SETTINGS:
        rng = np.random.default_rng(0)
        model = paper_model(layers)
        fns = [iwae_step_function(model, x_train, batch, k, rng),
               training_step_products(model, batch, rng, samples=k),
               torch_products(torch, training_step_jobs(model, batch, rng, samples=k))]
        if layers == "one layer":
            fns.append(torch_one_layer_step(torch, x_train, batch, k))
        for _ in range(20):
            for fn in fns:
                fn()
        ms = alternate(fns, args.repeats)
        torch_step = f"{ms[3]:7.2f}" if len(ms) > 3 else f"{'-':>7s}"
        print(f"   {layers:10s} {batch:5d} {k:3d} {ms[0]:9.2f} {ms[1]:9.2f} {torch_step} "
              f"{ms[2]:9.2f} {ms[0] / ms[1]:10.2f} {ms[0] / ms[2]:10.2f}", flush=True)


if __name__ == "__main__":
    main()
