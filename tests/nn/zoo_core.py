"""The walking skeleton's models: GRU, LSTM, LRU and a wrapped MLP."""

import memrl_eqx.nn as mnn


IN, OUT = 5, 6

MODELS = {
    "gru": lambda key: mnn.RNN(mnn.GRUCell(in_features=IN, features=OUT, key=key)),
    "lstm": lambda key: mnn.RNN(mnn.LSTMCell(in_features=IN, features=OUT, key=key)),
    "lru": lambda key: mnn.Memoroid(
        mnn.LRUCell(in_features=IN, features=OUT, hidden_dim=7, key=key)
    ),
    "lru_sequential": lambda key: mnn.Memoroid(
        mnn.LRUCell(in_features=IN, features=OUT, hidden_dim=7, key=key),
        scan="sequential",
    ),
    "mlp": lambda key: mnn.SequenceModelWrapper(
        mnn.MLP(in_features=IN, features=(8, OUT), key=key)
    ),
}


def _windowed(key, scan="associative"):
    from ._windowed_cell import WindowedDecayCell

    return mnn.Memoroid(WindowedDecayCell(IN, OUT, key=key), scan=scan)


MODELS["windowed_test_cell"] = _windowed


def _pre_norm_stack(key):
    import jax.random as jr

    k1, k2, k3, k4 = jr.split(key, 4)
    return mnn.Stack(
        [
            mnn.MLP(in_features=IN, features=(OUT,), key=k1),
            mnn.Residual(
                mnn.PreNorm(
                    mnn.RNN(mnn.GRUCell(in_features=OUT, features=OUT, key=k2)),
                    features=OUT,
                )
            ),
            mnn.Residual(
                mnn.PreNorm(
                    mnn.Memoroid(
                        mnn.LRUCell(in_features=OUT, features=OUT, hidden_dim=4, key=k3)
                    ),
                    features=OUT,
                )
            ),
            mnn.Residual(mnn.PreNorm(mnn.FFN(features=OUT, key=k4), features=OUT)),
        ]
    )


MODELS["stack_gru_lru_ffn"] = _pre_norm_stack


def _xlstm(key):
    # One mLSTM block and one sLSTM block (with its gated MLP), 8 wide.
    return mnn.xLSTM(in_features=IN, features=8, num_blocks=2, num_heads=2, key=key)


MODELS["xlstm"] = _xlstm
