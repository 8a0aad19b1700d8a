"""exercises/check.py: all pass on the library (--reference), all TODO on the
untouched skeletons, PASS on right answers written as a student would, and
FAIL with the right hint on the right exercise for common wrong answers."""

import importlib.util
import io
from pathlib import Path

import pytest

EXERCISES_DIR = Path(__file__).resolve().parents[1] / "exercises"
spec = importlib.util.spec_from_file_location("exercises_check", EXERCISES_DIR / "check.py")
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)

FILES = {e.name: e.file for e in check.EXERCISES}

# a right answer to every exercise: the body that replaces its `raise NotImplementedError`
RIGHT = {
    "linear": "return dout @ W.T, x.T @ dout, dout.sum(axis=0)",
    "relu": "return dout * (out > 0)",
    "tanh": "return dout * (1 - out ** 2)",
    "sigmoid": "return dout * out * (1 - out)",
    "reparameterize": "return dz, dz * eps * std / 2",
    "kl": "return dkl[:, None] * mu, dkl[:, None] * (np.exp(logvar) - 1) / 2",
    "bernoulli": "return dlogp[:, None] * (x - sigmoid(logits))",
    "gaussian": "return (dlogp[:, None] * diff * precision,\n"
                "            dlogp[:, None] * (diff ** 2 * precision - 1) / 2)",
    "vae_step": """dlogpx = np.full(n, -1.0 / n)
    dz = model.decoder.backward(grads, model.likelihood.log_prob_backward(dlogpx, lik_cache),
                                dec_cache)
    dmu, dlogvar = reparameterize_backward(dz, rep_cache)
    dmu_kl, dlogvar_kl = kl_standard_normal_backward(np.full(n, beta / n), kl_cache)
    model.encoder.backward(grads, np.concatenate([dmu + dmu_kl, dlogvar + dlogvar_kl], axis=1),
                           enc_cache, need_dx=False)
    return grads""",
    "adam": """m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps), m, v""",
    "full_covariance": "return dkl[:, None] * mu, dkl[:, None, None] * (\n"
                       "        factor - np.eye(mu.shape[1]) / np.diagonal(factor, axis1=1, axis2=2)[:, :, None])",
    "normalisation": """recon = np.sum(softplus(logits) - x * logits, axis=1)
    kl = 0.5 * np.sum(np.exp(logvar) + mu ** 2 - 1 - logvar, axis=1)
    return float(np.mean(recon + kl))""",
}

RECON = "np.sum(softplus(logits) - x * logits, axis=1)"
KL = "0.5 * np.sum(np.exp(logvar) + mu ** 2 - 1 - logvar, axis=1)"
SIGMOID = "p = 1 / (1 + np.exp(-logits))\n    "

# (exercise, wrong body, what the checker must say about it)
WRONG = [
    ("linear", "return dout @ W.T, x.T @ dout, dout.mean(axis=0)",
     "hint: db is the sum of dout over the batch, not its mean"),
    ("linear", "return dout @ W, x.T @ dout, dout.sum(axis=0)", "ValueError: matmul"),
    ("linear", "return dout @ W, x.T @ dout, dout.sum(axis=0)",
     "hint: each gradient has the shape of its input"),
    ("linear", "return dout @ W.T, dout.T @ x, dout.sum(axis=0)",
     "gradient for 'W' has shape (3, 5), the input (5, 3)"),
    ("relu", "return dout * (out >= 0)", "hint: the mask is x > 0"),
    ("tanh", "return dout * (1 - out)", "hint: d tanh(x)/dx = 1 - tanh(x)^2 = 1 - out^2"),
    ("sigmoid", "return dout * out", "(1 - out) is missing"),
    ("reparameterize", "return dz, dz * eps * std",
     "analytic = 2.00 x numerical  WRONG\n"),
    ("reparameterize", "return dz, dz * eps * std", "the 1/2 of the exponent is missing"),
    ("kl", "return -dkl[:, None] * mu, dkl[:, None] * (np.exp(logvar) - 1) / 2",
     "hint: the sign is flipped"),
    ("kl", "return dkl[:, None] * mu, dkl[:, None] * (np.exp(logvar) + 1) / 2", "the sign of the 1"),
    ("bernoulli", "return dlogp[:, None] * (sigmoid(logits) - x)", "the sign is flipped"),
    ("gaussian", "return (dlogp[:, None] * diff * precision,\n"
                 "            dlogp[:, None] * (diff ** 2 * precision - 1))",
     "the 1/2 in front of both terms is missing"),
    ("vae_step", RIGHT["vae_step"].replace("beta / n", "1.0 / n"),
     "right for beta = 1 only"),
    ("vae_step", RIGHT["vae_step"].replace("dmu + dmu_kl", "dmu"), "the sum of both paths"),
    ("vae_step", RIGHT["vae_step"].replace("-1.0 / n", "-1.0"),
     "N = 3 times too large: the 1/N of the batch mean is missing"),
    ("adam", RIGHT["adam"].replace("m_hat = m / (1 - beta1 ** t)", "m_hat = m"),
     "the bias correction of m is missing"),
    ("adam", RIGHT["adam"].replace("np.sqrt(v_hat) + eps", "np.sqrt(v_hat + eps)"),
     "eps goes outside the square root"),
    ("full_covariance", "return dkl[:, None] * mu, dkl[:, None, None] * factor",
     "hint: the log det term is missing"),
    ("full_covariance", "return dkl[:, None] * mu, dkl[:, None, None] * (\n"
                        "        factor - np.linalg.inv(factor).transpose(0, 2, 1))",
     "keep the lower triangle (np.tril)"),
    ("adam", RIGHT["adam"].replace("v = beta2 * v + (1 - beta2)", "v = beta1 * v + (1 - beta1)"),
     "v is updated with beta1"),
    ("adam", RIGHT["adam"].replace("v / (1 - beta2 ** t)", "v / (1 - beta1 ** t)"),
     "v_hat is corrected with beta1"),
    ("adam", RIGHT["adam"].replace("lr * m_hat", "2 * lr * m_hat"),
     "yours = 2 x the textbook step"),
    ("sigmoid", "return dout * out * (1 + out)", "you wrote s(1+s)"),
    ("kl", "return dkl * mu, dkl * (np.exp(logvar) - 1) / 2",
     "could not be broadcast together with shapes (4,) (4,3)"),
    ("kl", "return dkl * mu, dkl * (np.exp(logvar) - 1) / 2", "hint: dkl has shape (N,)"),
    # exercise 12: each mistake of normalisation named
    ("normalisation", f"return float(np.mean(softplus(logits) - x * logits) + np.mean({KL}))",
     "your reconstruction is averaged over the 784 pixels"),
    ("normalisation", f"return float(np.mean({RECON} + {KL} / 784))",
     "your KL is scaled by 1/784: you averaged over pixels"),
    ("normalisation", f"return float(np.mean({RECON} + {KL} / 784))", "effective beta of 0.001276"),
    ("normalisation", f"return float(np.sum({RECON} + {KL}))",
     "your loss is a sum over the batch, not a mean"),
    ("normalisation", f"return float(np.sum({RECON}) + np.mean({KL}))",
     "your reconstruction is a sum over the batch, not a mean"),
    ("normalisation", f"return float(np.mean({RECON} - {KL}))", "your KL has the wrong sign"),
    ("normalisation", f"return float(-np.mean({RECON} + {KL}))", "your loss has the wrong sign"),
    ("normalisation", f"return float(np.mean({RECON}) + np.mean({KL}) / x.shape[0])",
     "divided by the batch size on top of the batch mean"),
    ("normalisation", f"return float(np.mean({RECON}) + 128 / 60000 * np.mean({KL}))",
     "weighted by M/N = 128/60000"),
    ("normalisation", f"return float(np.mean({RECON} + {KL} / 60000))",
     "divided by the training-set size"),
    ("normalisation", f"return float(np.mean({RECON}) + "
                      "np.mean(0.5 * (np.exp(logvar) + mu ** 2 - 1 - logvar)))",
     "your KL is averaged over the 20 latent dimensions"),
    ("normalisation", f"return float(np.mean({RECON} + 2 * {KL}))",
     "the 1/2 in front of the KL's sum is missing"),
    ("normalisation", "std = np.exp(logvar)\n    return float(np.mean(" + RECON
     + " + 0.5 * np.sum(std ** 2 + mu ** 2 - 1 - np.log(std ** 2), axis=1)))",
     "you used std = exp(logvar)"),
    ("normalisation", f"return float(np.mean({RECON} + 0.5 * np.sum(mu ** 2, axis=1)))",
     "the variance part of the KL is missing"),
    ("normalisation", f"return float(np.mean({RECON} + x.shape[1] * np.log(2 * np.pi) / 2 + {KL}))",
     "a Bernoulli log-likelihood has no log(2 pi)"),
    ("normalisation", f"return float(np.mean({RECON} + "
                      "0.5 * np.sum(np.exp(logvar) + mu ** 2 - logvar, axis=1)))",
     "the -1 inside the KL is missing"),
    ("normalisation", SIGMOID + "return float(np.mean(-np.sum(x * np.log(p) + (1 - x) * "
                                f"np.log(1 - p), axis=1) + {KL}))",
     "at logits of +-40 your reconstruction is wrong or not finite"),
    ("normalisation", SIGMOID + f"return float(np.mean(np.sum((x - p) ** 2, axis=1) + {KL}))",
     "your reconstruction is a squared error"),
    ("normalisation", f"return {RECON} + {KL}", "must return one number"),
    ("normalisation", f"return float(np.mean({RECON} ** 2 + {KL}))",
     "your loss is not a weighted sum of the Bernoulli reconstruction and the KL"),
]


def run(argv):
    out = io.StringIO()
    status = check.main([str(a) for a in argv], stream=out)
    return status, out.getvalue()


def statuses(text):
    """{file: 'PASS' | 'FAIL' | 'TODO'} from the report."""
    found = {}
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] in FILES.values():
            found[parts[0]] = parts[1]
    return found


def copy_with(tmp_path, answers):
    """The skeletons copied to tmp_path, with ``answers`` {exercise: body} written in."""
    for exercise in check.EXERCISES:
        source = (EXERCISES_DIR / exercise.file).read_text()
        if exercise.name in answers:
            todo = next(line for line in source.splitlines() if "raise NotImplementedError" in line)
            assert source.count(todo) == 1
            source = source.replace(todo.strip(), answers[exercise.name])
        (tmp_path / exercise.file).write_text(source)
    return tmp_path


def test_the_library_passes_every_exercise():
    status, text = run(["--reference"])
    assert status == 0, text
    assert set(statuses(text).values()) == {"PASS"} and len(statuses(text)) == len(check.EXERCISES)
    n = len(check.EXERCISES)
    assert f"{n} passed, 0 failed, 0 to do (of {n})" in text


def test_the_untouched_skeletons_are_all_todo_and_nothing_crashes():
    status, text = run([])
    assert status == 1
    assert statuses(text) == {file: "TODO" for file in FILES.values()}
    for exercise in check.EXERCISES:
        assert exercise.doc in text
    n = len(check.EXERCISES)
    assert f"0 passed, 0 failed, {n} to do (of {n})" in text


def test_right_answers_written_as_a_student_would_all_pass(tmp_path):
    status, text = run(["--dir", copy_with(tmp_path, RIGHT)])
    assert status == 0, text
    assert set(statuses(text).values()) == {"PASS"}


@pytest.mark.parametrize("exercise, body, expected", WRONG,
                         ids=[f"{w[0]}-{i}" for i, w in enumerate(WRONG)])
def test_a_wrong_answer_fails_on_its_exercise_with_the_hint(tmp_path, exercise, body, expected):
    others = {name: RIGHT[name] for name in ("linear", "kl")}   # some right, the rest TODO
    answers = {**others, exercise: body}
    status, text = run(["--dir", copy_with(tmp_path, answers)])
    assert status == 1
    found = statuses(text)
    assert found[FILES[exercise]] == "FAIL", text
    assert expected in text, text
    for name, file in FILES.items():
        if name != exercise:
            assert found[file] == ("PASS" if name in others else "TODO")


def test_adam_is_compared_with_the_textbook_update_not_a_numerical_gradient(tmp_path):
    wrong = RIGHT["adam"].replace("m_hat = m / (1 - beta1 ** t)", "m_hat = m")
    for answers in ({"adam": RIGHT["adam"]}, {"adam": wrong}):
        text = run(["--dir", copy_with(tmp_path, answers), "adam"])[1]
        assert "x numerical" not in text, text
    assert "x the textbook" in text


def test_the_right_loss_passes_in_other_forms_and_a_beta_is_named(tmp_path):
    """The same loss written another way passes; a loss that is a beta-VAE is told its beta."""
    stable = ("recon = np.sum(np.maximum(logits, 0) - x * logits + np.log1p(np.exp(-np.abs(logits))),"
              " axis=1)\n    return float(np.mean(recon) - 0.5 * np.mean(np.sum(1 + logvar - mu ** 2"
              " - np.exp(logvar), axis=1)))")
    status, text = run(["--dir", copy_with(tmp_path, {"normalisation": stable}), "normalisation"])
    assert status == 0, text
    beta4 = RIGHT["normalisation"].replace("recon + kl", "recon + 4 * kl")
    status, text = run(["--dir", copy_with(tmp_path, {"normalisation": beta4}), "normalisation"])
    assert status == 1 and "an effective beta of 4" in text, text


def test_broken_files_fail_without_crashing(tmp_path):
    copy_with(tmp_path, {"relu": "return dout *"})              # a syntax error
    (tmp_path / FILES["tanh"]).unlink()
    status, text = run(["--dir", tmp_path, "relu", "tanh", "sigmoid"])
    assert status == 1
    assert statuses(text) == {FILES["relu"]: "FAIL", FILES["tanh"]: "FAIL", FILES["sigmoid"]: "TODO"}
    assert "cannot import it: SyntaxError" in text and "is missing" in text


def test_names_select_exercises_and_bad_arguments_exit_2(capsys):
    status, text = run(["--reference", "kl", "adam"])
    assert status == 0 and set(statuses(text)) == {FILES["kl"], FILES["adam"]}
    for argv in (["nonsense"], ["--dir", "/no/such/folder"]):
        with pytest.raises(SystemExit) as e:
            check.main(argv, stream=io.StringIO())
        assert e.value.code == 2
    assert "unknown exercise nonsense" in capsys.readouterr().err


def test_the_skeletons_leave_only_the_backward_to_write():
    """Every exercise file has exactly one TODO that raises, and names its document."""
    for exercise in check.EXERCISES:
        source = (EXERCISES_DIR / exercise.file).read_text()
        assert source.count("raise NotImplementedError") == 1, exercise.file
        assert exercise.doc in source, f"{exercise.file} does not point to {exercise.doc}"
