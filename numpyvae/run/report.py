"""Everything a run prints: its description, one line per epoch, the final
summary, and the messages that say what is on disk after a failure or an
interruption (read from the disk, so they promise nothing that is not there)."""

from numpyvae.run.checkpoint import checkpoint_epoch
from numpyvae.run.progress import format_seconds
from numpyvae.run.rundir import CHECKPOINT


def describe(config, model, info, out, done):
    """Two or three lines: the model, data and settings; what the run does, and
    where; what its final evaluation costs (evaluation_notice)."""
    arch = "-".join(str(s) for s in (model.input_dim, *model.hidden_dims, model.latent_dim))
    if config.stochastic_layers == 2:
        arch += "".join(f"-{s}" for s in (*model.top_hidden_dims, model.top_latent_dim))
    decoder = config.likelihood
    if config.obs_var is not None:
        decoder += f" (variance {config.obs_var})"
    if config.output_bias == "data":
        decoder += " (output biases from the data)"
    beta = f"beta {config.beta:g}"
    if config.kl_warmup:
        beta += f" (warm-up over {config.kl_warmup:g} epochs)"
    if config.free_bits:
        beta += f", free bits {config.free_bits:g} nats per dimension"
    batch = f"batch {config.batch_size}"
    if config.batch_size > info["n_train"]:
        batch += f" (all {info['n_train']:,} examples)"
    where = f"resuming after epoch {done}" if done else "training"
    objective = objective_name(config.objective, config.k)
    lr = f"lr {config.lr:g}" + (f" ({config.lr_schedule} schedule)"
                                if config.lr_schedule != "constant" else "")
    posterior = "" if config.posterior == "diagonal" else f" ({config.posterior}-covariance q(z|x))"
    lines = (f"VAE{posterior} {arch} {config.activation}, {decoder} decoder, binarize {config.binarize}, "
             f"{objective}, {beta}; {config.optimizer} {lr}, {batch}, "
             f"{config.dtype}, seed {config.seed}; {info['n_train']:,} train / "
             f"{info['n_test']:,} test examples\n"
             f"{where}: {plural(config.epochs, 'epoch')} -> {out}")
    notice = evaluation_notice(config, model, info, done)
    return lines + ("\n" + notice if notice else "")


def evaluation_notice(config, model, info, done):
    """One line, said before training: what the final log p(x) will cost, as
    decoder passes and against the work of the training still to do (""
    with --eval-k 0).

    Work is counted in multiply-adds of the matrix products, which dominate
    both.  Per training example: the encoder forward and backward (3 products
    per layer, 2 for the first, whose input needs no gradient) and k decoder
    passes forward and backward; per epoch also the test -ELBO (one encoder
    and one decoder pass per test image).  The evaluation: eval_k decoder
    passes per test image (the rest of it is a few passes per image).
    """
    if not config.eval_k:
        return ""
    n_train, n_test = info["n_train"], info["n_test"]
    enc, dec = model.encoder.multiply_adds(), model.decoder.multiply_adds()
    first = model.encoder.sizes[0] * model.encoder.sizes[1]
    epoch = n_train * (3 * enc - first + 3 * config.k * dec) + n_test * (enc + dec)
    training = (config.epochs - done) * epoch
    passes = n_test * config.eval_k
    cost = (f"about {_times(passes * dec / training)} the work of the "
            f"{plural(config.epochs - done, 'epoch')} of training" if training
            else "no training left to do")
    return (f"final log p(x): --eval-k {config.eval_k} decoder passes for each of "
            f"{n_test:,} test images ({passes:,} in all), {cost}; a lower --eval-k makes it cheaper, "
            "0 skips it")


def _times(ratio):
    """'3.1x', '110x', '0.05x'."""
    if ratio >= 10:
        return f"{ratio:,.0f}x"
    return f"{ratio:.1f}x" if ratio >= 0.1 else f"{ratio:.2g}x"


def epoch_line(r, config):
    """One line for the record ``r`` of an epoch (see run.fit)."""
    width = len(str(config.epochs))
    line = (f"epoch {r['epoch']:{width}d}/{config.epochs}  train {r['train_loss']:7.2f}  "
            f"test {r['test_loss']:7.2f} (recon {r['test_recon']:6.2f} + KL {r['test_kl']:5.2f})  "
            f"{r['seconds']:.2f} s  {r['examples_per_sec']:,.0f} ex/s")
    line += f"  beta {r['beta']:.3f}" if config.kl_warmup else ""
    return line + (f"  lr {r['lr']:.2e}" if config.lr_schedule != "constant" else "")


def objective_name(objective, k):
    """How a run names its objective, e.g. 'IWAE bound, k=5'."""
    names = {"elbo": "ELBO (closed-form KL)", "elbo-mc": "ELBO (sampled KL)",
             "iwae": "IWAE bound", "wake-sleep": "wake-sleep"}
    return names[objective] + (f", k={k}" if k != 1 else "")


def summary(final, epochs):
    """The final evaluation (run.final_evaluation) after ``epochs`` epochs."""
    lines = [f"final (after {plural(epochs, 'epoch')}), test set, nats per example:",
             f"  -ELBO          {final['test_loss']:8.2f}   (recon {final['test_recon']:.2f} "
             f"+ KL {final['test_kl']:.2f})"]
    if (final["objective"], final["k"]) not in (("elbo", 1), ("wake-sleep", 1)):
        lines.append(f"  -bound         {final['test_bound_loss']:8.2f}   (the training objective: "
                     f"{objective_name(final['objective'], final['k'])})")
    if final["test_nll"] is not None:
        lines.append(f"  -log p(x)      {final['test_nll']:8.2f}   (importance-weighted, "
                     f"k={final['eval_k']}, {plural(final['eval_workers'], 'thread')}, "
                     f"{format_seconds(final['iw_seconds'])})")
    lines.append(f"  active units   {final['active_units']:5d}/{final['latent_dim']}"
                 "   (Var_x E[z_u|x] > 0.01)")
    if "top_active_units" in final:
        lines.append(f"  active units   {final['top_active_units']:5d}/{final['top_latent_dim']}"
                     "   of z2 (Var_x E[z2_u|x] > 0.01, 100 draws of z1 per image)")
    return "\n".join(lines)


def on_disk(out):
    """What the checkpoint in ``out`` holds, as a sentence, read from the disk."""
    saved = checkpoint_epoch(out / CHECKPOINT)
    if saved is None:
        return f"No checkpoint was written: {out} holds no finished epoch."
    return f"{out / CHECKPOINT} holds epoch {saved}."


def diverged(error, config, out):
    """The message of a TrainingDiverged ``error``: where, what is saved, what to do."""
    if error.before_update:
        shaping = f"--beta {config.beta:g}" + (f", --obs-var {config.obs_var}"
                                               if config.obs_var is not None else "")
        advice = ("It happened before any update, so the learning rate is not the cause: the "
                  "untrained model already gives a non-finite loss or gradient on this data; "
                  f"check the settings that shape the loss ({shaping} now) and the data.")
    else:
        advice = (f"Lower the learning rate (--lr {config.lr:g} now) and start again "
                  "(--overwrite).")
    lost = (f"Nothing of epoch {error.epoch} was saved." if error.epoch is not None
            else "The final evaluation was not saved.")
    return f"{error}.\n{lost} {on_disk(out)}  {advice}"


def interrupted(out, stage):
    """The message after Ctrl-C during ``stage`` ('epoch 3' or 'the final evaluation')."""
    saved = checkpoint_epoch(out / CHECKPOINT)
    if saved is None:
        return f"interrupted during {stage}: no checkpoint was written, nothing to resume"
    return (f"interrupted during {stage}: {out / CHECKPOINT} holds epoch {saved}; "
            "continue with --resume")


def plural(n, noun):
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
