import numpy as np

from synthwear.default_plugins.binning import BinningConfig, BinningEncoder
from synthwear.interfaces import MISSING


def test_centre_decoding_is_within_half_a_bin():
    encoder = BinningEncoder(35, 115, BinningConfig(bins=100, decode="centre"))
    values = np.random.default_rng(0).uniform(35, 115, 10_000)
    tokens, clipped = encoder.encode(values)
    decoded = encoder.decode(tokens, np.random.default_rng(1))
    assert clipped == 0
    assert np.abs(decoded - values).max() <= encoder.width / 2 + 1e-9


def test_uniform_decoding_stays_in_the_bin_and_is_unbiased():
    encoder = BinningEncoder(0, 40_000, BinningConfig(bins=100, decode="uniform"))
    values = np.random.default_rng(0).uniform(0, 40_000, 50_000)
    tokens, _ = encoder.encode(values)
    decoded = encoder.decode(tokens, np.random.default_rng(1))
    assert (encoder.encode(decoded)[0] == tokens).all()
    assert abs((decoded - values).mean()) < encoder.width * 0.02


def test_missing_and_clipping():
    encoder = BinningEncoder(0, 10, BinningConfig(bins=10))
    tokens, clipped = encoder.encode(np.array([np.nan, -3, 0, 9.99, 10, 12]))
    assert tokens.tolist() == [MISSING, 0, 0, 9, 9, 9]
    assert clipped == 2
    assert np.isnan(encoder.decode(tokens, np.random.default_rng(0))[0])
