"""BertConfig: the hyper-parameters of a BERT, read from and written to a Hugging Face config.json.

Only what changes the computation is a field; every other key of the file (architectures, pad_token_id,
transformers_version, ...) is kept in `extra` and written back unchanged. Values we cannot compute
(another model type, another activation, relative positions) are refused when the config is built.
"""
import json
import os
from dataclasses import dataclass, field, fields

# largest accepted value of each size: far above any published BERT (vocabularies of 250k, 48 layers of
# width 2,560), far below what would exhaust a machine's memory before anything is computed
MAX_SIZES = {"vocab_size": 4_000_000, "hidden_size": 65_536, "num_hidden_layers": 1_000,
             "num_attention_heads": 4_096, "intermediate_size": 262_144,
             "max_position_embeddings": 1_048_576, "type_vocab_size": 65_536}
MAX_PARAMETERS = 20_000_000_000       # 80 GB in float32: the whole model, checked before it is allocated

# hidden_act values and the GELU each one means (Hugging Face's names)
ACTIVATIONS = {"gelu": "erf", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh",
               "gelu_fast": "tanh"}


@dataclass
class BertConfig:
    """Sizes of a BERT. Field names and defaults are those of Hugging Face's BertConfig (BERT-base)."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    pad_token_id: int = 0      # its embedding row gets no gradient from the lookup (as in PyTorch)
    extra: dict = field(default_factory=dict)   # unknown config.json keys, kept for to_json

    def __post_init__(self):
        for name, most in MAX_SIZES.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= most:
                raise ValueError(f"config.{name} must be an int in [1, {most:,}], got {v!r:.60}")
        if self.num_attention_heads > self.hidden_size:
            raise ValueError(f"config.num_attention_heads ({self.num_attention_heads}) must be at most "
                             f"hidden_size ({self.hidden_size})")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"config.hidden_size ({self.hidden_size}) must be divisible by "
                             f"num_attention_heads ({self.num_attention_heads})")
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"config.hidden_act must be one of {sorted(ACTIVATIONS)}, "
                             f"got {self.hidden_act!r}")
        if self.pad_token_id is not None and (isinstance(self.pad_token_id, bool) or not isinstance(
                self.pad_token_id, int) or not 0 <= self.pad_token_id < self.vocab_size):
            raise ValueError(f"config.pad_token_id must be None or an int in [0, vocab_size), "
                             f"got {self.pad_token_id!r}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v < 1.0:
                raise ValueError(f"config.{name} must be a number in [0, 1), got {v!r}")
        for name in ("layer_norm_eps", "initializer_range"):
            v = getattr(self, name)
            # eps is added to a variance: 1 or more (or Infinity) would flatten every row to the same output
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1:
                raise ValueError(f"config.{name} must be a number in (0, 1), got {v!r}")
        if self.parameter_count() > MAX_PARAMETERS:
            raise ValueError(f"config: these sizes make {self.parameter_count():,} parameters, more than "
                             f"{MAX_PARAMETERS:,} (vocab_size, hidden_size, num_hidden_layers, "
                             "intermediate_size)")

    def parameter_count(self):
        """Parameters of the encoder, pooler and MLM head, from the sizes alone (nothing allocated).

        V C + (P + T) C + 2 C (embedding LayerNorm) + L (4 C^2 + 2 C I + I + 9 C) + C^2 + C (pooler)
        + C^2 + 3 C + V (MLM transform, LayerNorm and output bias)
        """
        V, C, L, I = self.vocab_size, self.hidden_size, self.num_hidden_layers, self.intermediate_size
        P, T = self.max_position_embeddings, self.type_vocab_size
        layer = 4 * C * C + 2 * C * I + I + 9 * C
        return V * C + (P + T) * C + 2 * C + L * layer + (C * C + C) + (C * C + 3 * C + V)

    @property
    def head_size(self):
        """HS = C / NH, the width of one attention head."""
        return self.hidden_size // self.num_attention_heads

    @property
    def gelu_kind(self):
        """'erf' (exact GELU) or 'tanh' (the tanh approximation)."""
        return ACTIVATIONS[self.hidden_act]

    # ---- Hugging Face config.json ----------------------------------------------------------

    @classmethod
    def from_dict(cls, d):
        """Build from a config.json dictionary; unknown keys go to `extra`."""
        if not isinstance(d, dict):
            raise ValueError(f"config must be a JSON object, got {type(d).__name__}")
        model_type = d.get("model_type", "bert")
        if model_type != "bert":
            raise ValueError(f"config model_type must be 'bert', got {model_type!r}")
        position_type = d.get("position_embedding_type", "absolute")
        if position_type != "absolute":
            raise ValueError("config position_embedding_type must be 'absolute' (learned positions), "
                             f"got {position_type!r}")
        if d.get("is_decoder") or d.get("add_cross_attention"):
            raise ValueError("config describes a decoder with cross-attention (is_decoder / "
                             "add_cross_attention); only the BERT encoder is supported")
        known = {f.name for f in fields(cls)} - {"extra"}
        kwargs = {k: v for k, v in d.items() if k in known}
        extra = {k: v for k, v in d.items() if k not in known and k != "model_type"}
        return cls(**kwargs, extra=extra)

    def to_dict(self):
        """The config.json dictionary: our fields, then the kept unknown keys."""
        d = dict(self.extra)
        d.update({f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"})
        d["model_type"] = "bert"
        return d

    @classmethod
    def from_json(cls, path):
        """Read a Hugging Face config.json (a file, or a directory holding one)."""
        if os.path.isdir(path):
            path = os.path.join(path, "config.json")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
            raise ValueError(f"config file {path} is not valid JSON: {err}") from None
        return cls.from_dict(d)

    def to_json(self, path):
        """Write config.json (sorted keys, like Hugging Face); returns the path written."""
        if os.path.isdir(path):
            path = os.path.join(path, "config.json")
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)   # atomic: readers see the old file or the new one, never half of it
        return path
