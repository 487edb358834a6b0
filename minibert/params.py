"""The parameter table of BERT: every name, its shape, how it is initialised, which ones are transposed.

Names are Hugging Face's without the 'bert.' prefix ('embeddings.word_embeddings.weight',
'encoder.layer.3.attention.self.query.weight', 'cls.predictions.bias', ...). Linear weights are
stored (C_in, C_out) for `x @ W`, the transpose of PyTorch's nn.Linear: the names in TRANSPOSED are
transposed when a checkpoint is read or written (checkpoint.py). The model (model.py), its heads
(heads.py) and the checkpoint reader all take their names from here, so none of them imports another
to learn a shape.
"""
import numpy as np

# Every nn.Linear weight: names ending like this are transposed on import and export.
TRANSPOSED = ("attention.self.query.weight", "attention.self.key.weight",
              "attention.self.value.weight", "attention.output.dense.weight",
              "intermediate.dense.weight", "output.dense.weight", "pooler.dense.weight",
              "cls.predictions.transform.dense.weight")


def encoder_param_shapes(config):
    """{name: shape} of every parameter bert_forward uses, in checkpoint order."""
    C, F = config.hidden_size, config.intermediate_size
    shapes = {"embeddings.word_embeddings.weight": (config.vocab_size, C),
              "embeddings.position_embeddings.weight": (config.max_position_embeddings, C),
              "embeddings.token_type_embeddings.weight": (config.type_vocab_size, C),
              "embeddings.LayerNorm.weight": (C,), "embeddings.LayerNorm.bias": (C,)}
    for i in range(config.num_hidden_layers):
        p = f"encoder.layer.{i}."
        for name in ("query", "key", "value"):
            shapes[p + f"attention.self.{name}.weight"] = (C, C)
            shapes[p + f"attention.self.{name}.bias"] = (C,)
        shapes.update({p + "attention.output.dense.weight": (C, C),
                       p + "attention.output.dense.bias": (C,),
                       p + "attention.output.LayerNorm.weight": (C,),
                       p + "attention.output.LayerNorm.bias": (C,),
                       p + "intermediate.dense.weight": (C, F), p + "intermediate.dense.bias": (F,),
                       p + "output.dense.weight": (F, C), p + "output.dense.bias": (C,),
                       p + "output.LayerNorm.weight": (C,), p + "output.LayerNorm.bias": (C,)})
    return shapes


def head_param_shapes(config):
    """{name: shape} of the pooler and MLM head parameters (the decoder is tied to the word embeddings)."""
    C, V = config.hidden_size, config.vocab_size
    return {"pooler.dense.weight": (C, C), "pooler.dense.bias": (C,),
            "cls.predictions.transform.dense.weight": (C, C),
            "cls.predictions.transform.dense.bias": (C,),
            "cls.predictions.transform.LayerNorm.weight": (C,),
            "cls.predictions.transform.LayerNorm.bias": (C,),
            "cls.predictions.bias": (V,)}


def check_params(params, shapes):
    """ValueError naming the first missing or wrongly shaped parameter."""
    for name, shape in shapes.items():
        if name not in params:
            raise ValueError(f"params is missing {name!r} (expected shape {shape})")
        if tuple(params[name].shape) != tuple(shape):
            raise ValueError(f"params[{name!r}] has shape {tuple(params[name].shape)}, "
                             f"expected {tuple(shape)}")


def init_params(config, rng, dtype=np.float32, heads=True):
    """Random parameters like Hugging Face's: N(0, initializer_range) weights, zero biases, unit LN.

    heads: also make the pooler and the MLM head (whose decoder is tied to the word embeddings)
    NumPy arrays; move them with xp.asarray to run elsewhere.
    """
    shapes = dict(encoder_param_shapes(config))
    if heads:
        shapes.update(head_param_shapes(config))
    params = {}
    for name, shape in shapes.items():
        if name.endswith("LayerNorm.weight"):
            params[name] = np.ones(shape, dtype)
        elif len(shape) == 1:
            params[name] = np.zeros(shape, dtype)
        else:
            params[name] = (rng.standard_normal(shape) * config.initializer_range).astype(dtype)
    return params


def sinusoidal_positions(n_positions, width, scale=0.1, dtype=np.float32):
    """(n_positions, width) position table of sines and cosines (Vaswani et al., 2017, section 3.5):

        PE[p, 2i] = scale * sin(p / 10000^(2i / width)),   PE[p, 2i + 1] = scale * cos(p / 10000^(2i / width))

    A starting value for BERT's learned position embeddings in place of random ones: PE[p + k] is a
    fixed rotation of PE[p] in every (2i, 2i + 1) plane, so "the token k places back" is one linear map
    of the embedding, which a query and key weight can learn at once. A row's norm is
    scale * sqrt(width / 2); with the default 0.1 that is about 3.5 times the norm of a random row of
    N(0, 0.02) weights, 0.02 * sqrt(width), so position stands out in every token's first vector.
    width: even.
    """
    if width % 2:
        raise ValueError(f"width: sinusoidal positions need an even width, got {width}")
    angle = np.arange(n_positions)[:, None] / 10000.0 ** (np.arange(0, width, 2)[None, :] / width)
    table = np.empty((n_positions, width))
    table[:, 0::2], table[:, 1::2] = np.sin(angle), np.cos(angle)
    return (scale * table).astype(dtype)
