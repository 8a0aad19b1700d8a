"""The public API as documented, dtype discipline, save/load, and input errors."""

import json
import warnings

import numpy as np
import pytest

import numpyvae
from gradcheck_helpers import DECODER_IDS, DECODERS
from numpyvae.evaluate import importance_weighted_log_likelihood
from numpyvae import SGD, VAE, Adagrad, Adam, AdamFast, Autoencoder, FlatParams
from numpyvae.util.validate import NonFiniteError


# ------------------------------------------------------------ public API --

def test_the_documented_api():
    model = VAE(input_dim=784, hidden_dims=(400,), latent_dim=20, likelihood="bernoulli",
                obs_var=1.0, activation="relu", dtype=np.float32, seed=0)
    rng = np.random.default_rng(0)
    x = (rng.random((8, 784)) < 0.3).astype(np.float32)

    assert isinstance(model.params, FlatParams)
    assert {k: v.shape for k, v in model.params.items()} == {
        "encoder.0.W": (784, 400), "encoder.0.b": (400,), "encoder.1.W": (400, 40),
        "encoder.1.b": (40,), "decoder.0.W": (20, 400), "decoder.0.b": (400,),
        "decoder.1.W": (400, 784), "decoder.1.b": (784,)}

    loss, grads = model.loss_and_grads(x, rng=rng, beta=1.0)
    assert type(loss) is float and np.isfinite(loss) and loss > 0
    assert list(grads) == list(model.params)
    assert all(grads[k].shape == p.shape for k, p in model.params.items())
    eps = rng.standard_normal((8, 20), dtype=np.float32)
    assert type(model.loss_and_grads(x, eps=eps)[0]) is float

    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (8, 20)
    mean = model.decode(mu)
    assert mean.shape == (8, 784) and np.all((mean >= 0) & (mean <= 1))

    opt = Adam(model.params, lr=1e-3)
    before = model.params.flat.copy()
    opt.step(grads)
    assert not np.array_equal(before, model.params.flat)
    loss_eps, grads_eps = model.loss_and_grads(x, eps=eps)
    opt.step(grads_eps)
    assert model.loss_and_grads(x, eps=eps)[0] < loss_eps      # a step downhill

    samples = model.sample(5, rng)
    assert samples.shape == (5, 784) and samples.dtype == np.float32
    assert model.reconstruct(x).shape == (8, 784)


def test_save_and_load_through_the_api(tmp_path):
    model = VAE(input_dim=784, hidden_dims=(400,), latent_dim=20, dtype=np.float32, seed=0)
    path = tmp_path / "vae.npz"
    model.save(path)
    loaded = VAE.load(path)
    assert isinstance(loaded, VAE)
    np.testing.assert_array_equal(loaded.params.flat, model.params.flat)


def test_package_exports():
    assert set(numpyvae.__all__) == {"VAE", "FullCovarianceVAE", "TwoLayerVAE", "Autoencoder",
                                     "load_model", "Adam", "AdamFast", "Adagrad", "AdagradFast",
                                     "SGD", "SGDFast", "FlatParams"}
    assert isinstance(numpyvae.__version__, str)


# ----------------------------------------------------------------- dtypes --

MODELS = [(VAE, lik, ov) for lik, ov in DECODERS] + [(Autoencoder, "bernoulli", 1.0)]
MODEL_IDS = [f"vae-{i}" for i in DECODER_IDS] + ["autoencoder"]


def data_for(likelihood, n, d, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if likelihood == "bernoulli":
        return rng.random((n, d)).astype(dtype)          # grey levels in [0, 1]
    return rng.standard_normal((n, d)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls, likelihood, obs_var", MODELS, ids=MODEL_IDS)
def test_a_model_keeps_its_dtype_everywhere(cls, likelihood, obs_var, dtype):
    model = cls(7, (5,), 3, likelihood, obs_var, "softplus", dtype, 0)
    x = data_for(likelihood, 4, 7, dtype)
    rng = np.random.default_rng(1)
    assert model.params.flat.dtype == dtype
    if cls is VAE:
        outputs = [*model.encode(x), model.sample(3, rng), *model.elbo_terms(x, rng=rng)]
        loss, grads = model.loss_and_grads(x, rng=rng, beta=0.5)
        z = rng.standard_normal((4, 3)).astype(dtype)
    else:
        z = model.encode(x)
        outputs = [z]
        loss, grads = model.loss_and_grads(x)
    outputs += [model.decode(z), model.reconstruct(x)]
    assert all(o.dtype == dtype for o in outputs), [o.dtype for o in outputs]
    assert type(loss) is float
    assert grads.flat.dtype == dtype and all(g.dtype == dtype for g in grads.values())
    for opt in (SGD(model.params, weight_decay=1e-3), Adagrad(model.params),
                Adam(model.params, weight_decay=1e-3)):
        opt.step(grads)
        assert model.params.flat.dtype == dtype
        assert all(p.dtype == dtype for p in model.params.values())
        assert all(v.dtype == dtype for k, v in opt.state_dict().items() if k != "t")


# -------------------------------------------------------------- save/load --

def perturbed(model):
    """Move the weights away from the seeded init, so a load that silently
    re-initialised from the seed could not pass."""
    rng = np.random.default_rng(42)
    model.params.flat += rng.standard_normal(model.params.flat.size).astype(model.dtype) * 0.1
    return model


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls, likelihood, obs_var", MODELS, ids=MODEL_IDS)
def test_save_then_load_is_bit_identical(tmp_path, cls, likelihood, obs_var, dtype):
    model = perturbed(cls(6, (5, 4), 2, likelihood, obs_var, "tanh", dtype, 3))
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = cls.load(path)
    assert type(loaded) is cls
    assert loaded.config() == model.config()
    assert loaded.params.flat.dtype == dtype
    np.testing.assert_array_equal(loaded.params.flat, model.params.flat)

    x = data_for(likelihood, 3, 6, dtype)
    z = np.random.default_rng(0).standard_normal((3, 2)).astype(dtype)
    np.testing.assert_array_equal(loaded.decode(z), model.decode(z))
    if cls is VAE:
        eps = np.random.default_rng(1).standard_normal((3, 2)).astype(dtype)
        for a, b in zip(loaded.encode(x), model.encode(x)):
            np.testing.assert_array_equal(a, b)
        (l1, g1), (l2, g2) = loaded.loss_and_grads(x, eps=eps), model.loss_and_grads(x, eps=eps)
    else:
        np.testing.assert_array_equal(loaded.encode(x), model.encode(x))
        (l1, g1), (l2, g2) = loaded.loss_and_grads(x), model.loss_and_grads(x)
    assert l1 == l2
    np.testing.assert_array_equal(g1.flat, g2.flat)
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]   # no temporary file left


def test_save_writes_exactly_the_given_path(tmp_path):
    model = VAE(4, (3,), 2, dtype=np.float64)
    model.save(tmp_path / "checkpoint")           # np.savez(filename) would append '.npz'
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint"]
    np.testing.assert_array_equal(VAE.load(tmp_path / "checkpoint").params.flat, model.params.flat)


def test_save_accepts_a_numpy_scalar_obs_var(tmp_path):
    """obs_var = x.var() of float32 data is a numpy.float32, which json cannot encode."""
    x = np.random.default_rng(0).random((10, 4)).astype(np.float32)
    model = VAE(4, (3,), 2, "gaussian", x.var(), dtype=np.float32)
    model.save(tmp_path / "m.npz")
    loaded = VAE.load(tmp_path / "m.npz")
    assert loaded.likelihood.obs_var == pytest.approx(float(x.var()))
    assert loaded.loss_and_grads(x, eps=np.zeros((10, 2), np.float32))[0] == \
        model.loss_and_grads(x, eps=np.zeros((10, 2), np.float32))[0]


def write_model_arrays(path, edit):
    model = VAE(4, (3,), 2, dtype=np.float64)
    arrays = {"config": json.dumps(model.config()),
              **{f"param/{k}": v for k, v in model.params.items()}}
    edit(arrays)
    np.savez(path, **arrays)


@pytest.mark.parametrize("edit, message", [
    (lambda a: a.pop("config"), "not a numpyvae model file"),
    (lambda a: a.pop("param/decoder.1.W"), "missing parameter 'decoder.1.W'"),
    (lambda a: a.update({"param/encoder.0.b": np.zeros(5)}), "'encoder.0.b' has shape"),
    (lambda a: a.update({"config": json.dumps({"kind": "gan"})}), "unknown model kind 'gan'"),
])
def test_load_rejects_files_that_are_not_numpyvae_models(tmp_path, edit, message):
    path = tmp_path / "m.npz"
    write_model_arrays(path, edit)
    with pytest.raises(ValueError, match=message):
        VAE.load(path)


def test_load_rejects_an_unrelated_npz(tmp_path):
    np.savez(tmp_path / "other.npz", weights=np.ones(3))
    with pytest.raises(ValueError, match="not a numpyvae model file"):
        VAE.load(tmp_path / "other.npz")


@pytest.mark.parametrize("corrupt", ["truncated", "garbage", "empty", "npy"])
def test_load_rejects_a_corrupt_file_with_a_clear_value_error(tmp_path, corrupt):
    """Not zipfile.BadZipFile, EOFError, TypeError, or numpy's 'pickled data' message."""
    path = tmp_path / "m.npz"
    VAE(4, (3,), 2, dtype=np.float64).save(path)
    data = path.read_bytes()
    if corrupt == "npy":                          # a plain .npy array under an .npz name
        with open(path, "wb") as f:
            np.save(f, np.ones(3))
    else:
        path.write_bytes({"truncated": data[:len(data) // 2],
                          "garbage": np.random.default_rng(0).bytes(300),
                          "empty": b""}[corrupt])
    with pytest.raises(ValueError, match="numpyvae model file"):
        VAE.load(path)


# -------------------------------------------------------------- bad input --

@pytest.fixture(scope="module")
def vae32():
    return VAE(6, (4,), 2, "bernoulli", dtype=np.float32, seed=0)


GOOD = np.full((3, 6), 0.5, dtype=np.float32)


@pytest.mark.parametrize("x, message", [
    (np.full(6, 0.5, np.float32), r"shape \(N, 6\)"),
    (np.full((3, 5), 0.5, np.float32), r"shape \(N, 6\)"),
    (np.zeros((0, 6), np.float32), "N >= 1"),
    (np.full((2, 3, 6), 0.5, np.float32), r"shape \(N, 6\)"),
    (GOOD.astype(np.float64), "dtype float64 but the model is float32"),
    (GOOD.astype(np.int64), "dtype int64"),
    (np.zeros((3, 6), np.uint8), "dtype uint8"),
    (np.where(np.eye(3, 6) > 0, np.nan, GOOD).astype(np.float32), "NaN or inf"),
    (np.where(np.eye(3, 6) > 0, np.inf, GOOD).astype(np.float32), "NaN or inf"),
    (np.where(np.eye(3, 6) > 0, -np.inf, GOOD).astype(np.float32), "NaN or inf"),
    (np.where(np.eye(3, 6) > 0, 1.5, GOOD).astype(np.float32), r"\[0, 1\]"),
    (np.where(np.eye(3, 6) > 0, -0.5, GOOD).astype(np.float32), r"\[0, 1\]"),
    (GOOD.tolist(), "x must be a numpy array, got list"),
    (None, "x must be a numpy array, got NoneType"),
    (np.ma.masked_array(GOOD, mask=np.eye(3, 6) > 0), "plain numpy array, got the subclass "
                                                      "MaskedArray"),
    (np.asmatrix(GOOD), "plain numpy array, got the subclass matrix"),
    (GOOD.astype(object), "x must hold numbers, got an array of dtype object"),
])
def test_bad_x_is_rejected_with_a_message_naming_the_problem(vae32, x, message):
    rng = np.random.default_rng(0)
    error = TypeError if not isinstance(x, np.ndarray) or type(x) is not np.ndarray or \
        x.dtype == object else ValueError
    for call in (lambda: vae32.loss_and_grads(x, rng=rng), lambda: vae32.encode(x),
                 lambda: vae32.reconstruct(x), lambda: vae32.elbo_terms(x, rng=rng)):
        with pytest.raises(error, match=message):
            call()


def test_autoencoder_checks_its_input_too():
    model = Autoencoder(6, (4,), 2, "gaussian", dtype=np.float64)
    with pytest.raises(ValueError, match="NaN or inf"):
        model.loss_and_grads(np.full((2, 6), np.nan))
    with pytest.raises(ValueError, match="dtype float32"):
        model.encode(np.zeros((2, 6), np.float32))


def test_gaussian_data_may_lie_outside_unit_interval():
    model = VAE(6, (4,), 2, "gaussian", dtype=np.float32)
    x = np.linspace(-3, 3, 12, dtype=np.float32).reshape(2, 6)
    loss, _ = model.loss_and_grads(x, rng=np.random.default_rng(0))
    assert np.isfinite(loss)


def test_missing_rng_and_eps(vae32):
    with pytest.raises(ValueError, match="rng="):
        vae32.loss_and_grads(GOOD)


@pytest.mark.parametrize("eps, message", [
    (np.zeros((2, 2), np.float32), r"eps must be an array of shape \(3, 2\) for k=1, got \(2, 2\)"),
    (np.zeros((3, 3), np.float32), r"eps must be an array of shape \(3, 2\) for k=1, got \(3, 3\)"),
    (np.zeros(6, np.float32), r"eps must be an array of shape \(3, 2\)"),
    (np.zeros((3, 2), np.float64), "eps has dtype float64"),
    (np.full((3, 2), np.nan, np.float32), "eps contains NaN or inf"),
])
def test_bad_eps(vae32, eps, message):
    with pytest.raises(ValueError, match=message):
        vae32.loss_and_grads(GOOD, eps=eps)


def test_eps_of_the_wrong_type(vae32):
    with pytest.raises(TypeError, match=r"eps must be a numpy array of shape \(3, 2\), got list"):
        vae32.loss_and_grads(GOOD, eps=[[0.0, 0.0]] * 3)


@pytest.mark.parametrize("z, message", [
    (np.zeros((3, 3), np.float32), r"z must have shape \(N, 2\)"),
    (np.zeros((3, 2), np.float64), "z has dtype float64"),
])
def test_bad_z_to_decode(vae32, z, message):
    with pytest.raises(ValueError, match=message):
        vae32.decode(z)


def test_bad_gradient_buffer(vae32):
    with pytest.raises(ValueError, match="out must be a FlatParams"):
        vae32.loss_and_grads(GOOD, rng=np.random.default_rng(0),
                             out=VAE(6, (5,), 2, dtype=np.float32).params.zeros_like())
    with pytest.raises(TypeError, match="out must be a FlatParams"):
        vae32.loss_and_grads(GOOD, rng=np.random.default_rng(0),
                             out={k: np.zeros_like(v) for k, v in vae32.params.items()})


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(activation="gelu"), ValueError, "activation must be one of"),
    (dict(activation=None), TypeError, "activation must be a string"),
    (dict(likelihood="poisson"), ValueError,
     "likelihood must be one of ('bernoulli', 'gaussian', 'gaussian-sigmoid'), got 'poisson'"),
    (dict(likelihood="gaussian", obs_var=0.0), ValueError, "obs_var must be a finite number > 0"),
    (dict(likelihood="gaussian", obs_var=-1.0), ValueError, "obs_var must be"),
    (dict(likelihood="gaussian", obs_var=float("nan")), ValueError, "got nan"),
    (dict(likelihood="gaussian", obs_var=float("inf")), ValueError, "got inf"),
    (dict(likelihood="gaussian", obs_var="learn"), ValueError, "obs_var must be a positive number"),
    (dict(likelihood="gaussian", obs_var=None), TypeError, "obs_var must be a number, got None"),
    (dict(obs_var=0.5), ValueError, "likelihood='bernoulli' has none, got obs_var=0.5"),
    (dict(obs_var="learned"), ValueError, "likelihood='bernoulli' has none"),
    (dict(dtype=np.float16), ValueError, "dtype must be float32 or float64"),
    (dict(dtype=np.int32), ValueError, "dtype must be float32 or float64"),
    (dict(dtype="float3"), TypeError, "dtype must be float32 or float64, got 'float3'"),
    (dict(latent_dim=0), ValueError, "latent_dim must be an integer >= 1, got 0"),
    (dict(latent_dim=2.7), TypeError, "latent_dim must be an integer, got 2.7"),
    (dict(latent_dim="2"), TypeError, "latent_dim must be an integer, got '2'"),
    (dict(input_dim=0), ValueError, "input_dim must be an integer >= 1"),
    (dict(input_dim=784.0), TypeError, "input_dim must be an integer, got 784.0"),
    (dict(hidden_dims=(4, 0)), ValueError, "hidden_dims sizes must be an integer >= 1, got 0"),
    (dict(hidden_dims=400), TypeError, "hidden_dims must be a sequence of layer sizes such as "
                                       "(400,), got 400"),
    (dict(hidden_dims="400"), TypeError, "hidden_dims must be a sequence"),
    (dict(hidden_dims=(4.5,)), TypeError, "hidden_dims sizes must be an integer, got 4.5"),
    (dict(seed=-1), ValueError, "seed must be an integer >= 0, got -1"),
    (dict(seed=1.5), TypeError, "seed must be an integer, got 1.5"),
    (dict(seed=None), TypeError, "seed must be an integer, got None"),
])
@pytest.mark.parametrize("cls", [VAE, Autoencoder])
def test_bad_constructor_arguments(cls, kwargs, error, message):
    args = dict(input_dim=6, hidden_dims=(4,), latent_dim=2)
    with pytest.raises(error) as e:
        cls(**{**args, **kwargs})
    assert message in str(e.value)


def test_the_issues_constructor_calls():
    """VAE(784, (400,), 2.7) used to build latent_dim 2; VAE(784, 400) said
    "'int' object is not iterable"."""
    with pytest.raises(TypeError, match="latent_dim must be an integer, got 2.7"):
        VAE(784, (400,), 2.7)
    with pytest.raises(TypeError, match="hidden_dims must be a sequence"):
        VAE(784, 400)


def test_numpy_integers_are_accepted_and_saved_as_ints(tmp_path):
    model = VAE(np.int64(6), [np.int32(4)], np.int64(2), seed=np.int64(3))
    model.save(tmp_path / "m.npz")
    assert VAE.load(tmp_path / "m.npz").config() == model.config()
    assert model.config()["seed"] == 3 and type(model.config()["seed"]) is int


BAD_CALLS = [  # (call(model, rng), error, message)
    (lambda m, r: m.loss_and_grads(GOOD, rng=0), TypeError,
     "rng must be a numpy.random.Generator (np.random.default_rng(seed)), got 0"),
    (lambda m, r: m.loss_and_grads(GOOD, rng=np.random.RandomState(0)), TypeError,
     "(RandomState)"),
    (lambda m, r: m.loss_and_grads(GOOD, rng=r, beta=float("nan")), ValueError,
     "beta must be a finite number >= 0, got nan"),
    (lambda m, r: m.loss_and_grads(GOOD, rng=r, beta=float("inf")), ValueError,
     "beta must be a finite number >= 0, got inf"),
    (lambda m, r: m.loss_and_grads(GOOD, rng=r, beta=-1), ValueError, "beta must be"),
    (lambda m, r: m.loss_and_grads(GOOD, rng=r, beta="1"), TypeError,
     "beta must be a number, got '1'"),
    (lambda m, r: m.loss_and_grads(GOOD, rng=r, k=0), ValueError, "k must be an integer >= 1"),
    (lambda m, r: m.loss_and_grads(GOOD, rng=r, objective="vae"), ValueError,
     "objective must be one of"),
    (lambda m, r: m.loss_terms_and_grads(GOOD, rng="seed"), TypeError, "rng must be"),
    (lambda m, r: m.elbo_terms(GOOD, rng=0), TypeError, "rng must be"),
    (lambda m, r: m.sample(3, None), TypeError,
     "rng must be a numpy.random.Generator (np.random.default_rng(seed)), got None"),
    (lambda m, r: m.sample(3, 0), TypeError, "rng must be"),
    (lambda m, r: m.sample(0, r), ValueError, "n must be an integer >= 1, got 0"),
    (lambda m, r: m.sample(2.0, r), TypeError, "n must be an integer, got 2.0"),
    (lambda m, r: importance_weighted_log_likelihood(m, GOOD, eval_k=0, rng=r), ValueError,
     "eval_k must be an integer >= 1"),
    (lambda m, r: importance_weighted_log_likelihood(m, GOOD, eval_k=5), TypeError, "rng must be"),
    (lambda m, r: m.decode([[0.0, 0.0]]), TypeError, "z must be a numpy array, got list"),
]


@pytest.mark.parametrize("call, error, message", BAD_CALLS)
def test_public_methods_check_their_arguments(vae32, call, error, message):
    with pytest.raises(error) as e:
        call(vae32, np.random.default_rng(0))
    assert message in str(e.value)


@pytest.mark.parametrize("cls, likelihood, obs_var, scale", [
    (VAE, "gaussian", 1.0, 255.0),          # the issue's case: a Gaussian decoder on 0..255
    (VAE, "gaussian", "learned", 255.0),
    (Autoencoder, "gaussian", 1e-30, 1.0),  # in range, but a variance no float32 survives
])
def test_a_loss_that_overflows_says_what_and_what_to_do(cls, likelihood, obs_var, scale):
    model = cls(784, (400,), 20, likelihood, obs_var, dtype=np.float32, seed=0)
    rng = np.random.default_rng(0)
    x = (rng.integers(0, 256, (16, 784)) / 255 * scale).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")       # and no numpy RuntimeWarning on the way
        with pytest.raises(NonFiniteError) as e:
            model.loss_and_grads(x, rng=rng) if cls is VAE else model.loss_and_grads(x)
    message = str(e.value)
    assert "overflowed float32 (NaN or inf) for finite input" in message
    if scale > 10:
        assert "x holds values as large as 255: scale the data" in message
    else:
        assert "beta or obs_var are too large or too small" in message


def test_elbo_terms_overflow_is_an_error_too():
    model = VAE(784, (400,), 20, "gaussian", dtype=np.float32, seed=0)
    x = np.full((4, 784), 255, np.float32)
    with pytest.raises(NonFiniteError, match="the KL term"):
        model.elbo_terms(x, rng=np.random.default_rng(0))


def test_a_model_file_whose_config_is_wrong_names_the_file(tmp_path):
    cases = {"unknown-key": lambda c: {**c, "colour": "red"},
             "bad-value": lambda c: {**c, "latent_dim": 0},
             "missing": lambda c: {k: v for k, v in c.items() if k != "input_dim"},
             "a-list": lambda c: [1, 2]}
    model = VAE(4, (3,), 2, dtype=np.float64)
    for name, edit in cases.items():
        path = tmp_path / f"{name}.npz"
        np.savez(path, config=json.dumps(edit(model.config())),
                 **{f"param/{k}": v for k, v in model.params.items()})
        with pytest.raises(ValueError) as e:
            VAE.load(path)
        assert str(e.value).startswith(f"{path}: "), e.value
    path = tmp_path / "not-json.npz"
    np.savez(path, config="{kind: vae")
    with pytest.raises(ValueError, match=f"{path}: the model config is not JSON"):
        VAE.load(path)


@pytest.mark.parametrize("eps, message", [
    (None, None),     # None: drawn from rng, not an error
    (np.ma.masked_array(np.zeros((3, 2), np.float32)), "eps must be a plain numpy array"),
    (np.asmatrix(np.zeros((3, 2), np.float32)), "eps must be a plain numpy array"),
    (np.zeros((3, 2), object), "eps must hold numbers"),
])
def test_eps_must_be_a_plain_array(vae32, eps, message):
    rng = np.random.default_rng(0)
    if message is None:
        assert np.isfinite(vae32.loss_and_grads(GOOD, rng=rng, eps=eps)[0])
        return
    with pytest.raises(TypeError, match=message):
        vae32.loss_and_grads(GOOD, rng=rng, eps=eps)


@pytest.mark.parametrize("grads, message", [
    (None, "grads must be a dict of arrays with the keys of params"),
    ([1.0], "grads must be a dict of arrays"),
    ("matrix", r"grads\['encoder.0.W'\] must be a plain numpy array, got the subclass matrix"),
    ("object", r"grads\['encoder.0.W'\] must hold numbers"),
    ("none-entry", r"grads\['encoder.0.W'\] must be a numpy array, got NoneType"),
])
@pytest.mark.parametrize("optimizer", [SGD, Adagrad, Adam, AdamFast])
def test_optimizers_reject_what_is_not_a_dict_of_plain_arrays(vae32, optimizer, grads, message):
    opt = optimizer(vae32.params, lr=0.1)
    if isinstance(grads, str):
        kind, grads = grads, {k: v.copy() for k, v in vae32.params.items()}
        w = grads["encoder.0.W"]
        grads["encoder.0.W"] = {"matrix": None, "object": w.astype(object),
                                "none-entry": None}[kind] if kind != "matrix" else np.asmatrix(w)
    before = vae32.params.flat.copy()
    with pytest.raises(TypeError, match=message):
        opt.step(grads)
    np.testing.assert_array_equal(vae32.params.flat, before)
