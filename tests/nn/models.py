"""Every sequence model in the package, built small, for the shared contract tests.

A new model joins every contract test by adding one line here.
"""

import memrl_eqx.nn as mnn


IN, OUT = 5, 6

SEQUENCE_MODELS = {
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

MEMOROID_MODELS = {
    name: make
    for name, make in SEQUENCE_MODELS.items()
    if isinstance(make(__import__("jax").random.key(0)), mnn.Memoroid)
}
