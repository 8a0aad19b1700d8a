"""The models: parameters in one buffer, MLPs built from ops/, and the encoder-decoders.

params.py           FlatParams: every parameter a view into one contiguous buffer
mlp.py              a stack of linear layers and activations, forward and backward
encoder_decoder.py  what the VAE and the plain autoencoder share (the decoder, checks, saving)
vae.py              the VAE: Gaussian encoder q(z|x), decoder p(x|z), prior N(0, I)
two_layer_vae.py    two stochastic layers: q(z1|x) q(z2|z1), p(z2) p(z1|z2) p(x|z1)
full_covariance_vae.py  the VAE with a full-covariance posterior q(z|x) = N(mu, L L^T)
autoencoder.py      the plain autoencoder the ELBO derivation starts from
"""
