"""A strict array double: arrays of their own module that refuse to mix with NumPy arrays, as CuPy's do.

CuPy arrays live on a GPU, so CuPy never converts them to NumPy arrays behind the caller's back:
`numpy.asarray(gpu_array)` raises TypeError, `gpu_array + numpy_array` raises TypeError, and
`numpy_array[rows] = gpu_array` raises TypeError. Library code that creates its arrays with `np.zeros`
instead of asking its inputs for their module therefore fails on a GPU at the first mix. No GPU is
needed to find such code: `StrictArray` wraps a NumPy array and refuses exactly these mixes, and
`strict` (a `StrictModule`) plays the part of the `cupy` module, its functions delegating to NumPy and
returning StrictArrays. `smoothing.get_xp` finds the module through the array-API hook
`__array_namespace__`, as it would for any array library that is not NumPy.

What is allowed, as with CuPy:
- Python and NumPy scalars mix with StrictArrays; `float()`, `int()`, `bool()` of one element work.
- NumPy functions called on StrictArrays only (np.concatenate([a, b]), np.exp(a)) run and return
  StrictArrays (CuPy implements NumPy's dispatch protocols the same way).
- Integer or boolean NumPy arrays may index a StrictArray (CuPy copies them to the device).
- `strict.asarray(numpy_array)` is the explicit transfer to the "device"; `a.get()` and
  `strict.asnumpy(a)` the explicit transfer back.
Everything else that would turn a StrictArray into a NumPy array, or a NumPy array into an operand of a
StrictArray operation, raises TypeError.
"""
import numbers
from types import SimpleNamespace

import numpy as np

_REFUSED = ("{what}: a StrictArray does not mix with NumPy arrays (as a CuPy array would not); "
            "create arrays with the inputs' own module (get_xp) or transfer explicitly")


def _refuse(what):
    raise TypeError(_REFUSED.format(what=what))


def _unwrap(obj, what, host_ok=False):
    """obj with every StrictArray replaced by its NumPy array; NumPy arrays refused unless host_ok."""
    if isinstance(obj, StrictArray):
        return obj._a
    if isinstance(obj, np.ndarray):
        if not host_ok:
            _refuse(what)
        return obj.copy()                                         # a transfer copies, as to a device
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unwrap(o, what, host_ok) for o in obj)
    if isinstance(obj, dict):
        return {k: _unwrap(v, what, host_ok) for k, v in obj.items()}
    return obj


def _wrap(obj):
    """NumPy arrays and NumPy scalars become StrictArrays (a reduction gives a 0-d array, as in CuPy)."""
    if isinstance(obj, np.ndarray):
        return StrictArray(obj)
    if isinstance(obj, np.generic) and not isinstance(obj, (np.str_, np.bytes_)):
        return StrictArray(np.asarray(obj))
    if isinstance(obj, tuple):
        return tuple(_wrap(o) for o in obj)
    if isinstance(obj, list):
        return [_wrap(o) for o in obj]
    return obj


def _index(key):
    """An index for the wrapped array: StrictArrays unwrapped, NumPy index arrays accepted."""
    if isinstance(key, tuple):
        return tuple(_index(k) for k in key)
    if isinstance(key, StrictArray):
        return key._a
    if isinstance(key, np.ndarray) and key.dtype.kind not in "iub":
        _refuse(f"indexing with a NumPy array of dtype {key.dtype}")
    return key


def _binary(ufunc):
    return (lambda self, other: ufunc(self, other)), (lambda self, other: ufunc(other, self))


def _inplace(ufunc):
    def op(self, other):
        ufunc(self, other, out=(self,))
        return self
    return op


class StrictArray:
    """A NumPy array behind a wall: operators and methods work, implicit conversion to NumPy does not."""

    __slots__ = ("_a",)
    __hash__ = None

    def __init__(self, a):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"StrictArray wraps a numpy.ndarray, got {type(a).__name__}")
        self._a = a

    # the module of these arrays, found by smoothing.get_xp
    def __array_namespace__(self, api_version=None):
        return strict

    # the walls
    def __array__(self, dtype=None, copy=None):
        _refuse("implicit conversion to a NumPy array (numpy.asarray, numpy.array, or storing into one)")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        what = f"numpy.{ufunc.__name__}{'' if method == '__call__' else '.' + method}"
        if method == "at":                                        # (target, indices, [values])
            a, idx, *rest = inputs
            ufunc.at(_unwrap(a, what), _index(idx), *_unwrap(rest, what))
            return None
        args = _unwrap(list(inputs), what)
        outs = kwargs.get("out")
        kwargs = _unwrap(kwargs, what)
        result = getattr(ufunc, method)(*args, **kwargs)
        if outs is not None:                                      # results were written into StrictArrays
            return outs[0] if len(outs) == 1 else outs
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        what = f"numpy.{func.__name__}"
        if any(issubclass(t, np.ndarray) for t in types):
            _refuse(what)
        return _wrap(func(*_unwrap(args, what), **_unwrap(kwargs, what)))

    # explicit transfer back to the host, as CuPy's ndarray.get()
    def get(self):
        return self._a.copy()

    # attributes and methods of the wrapped array, with StrictArrays in and out
    @property
    def shape(self):
        return self._a.shape

    @property
    def dtype(self):
        return self._a.dtype

    @property
    def ndim(self):
        return self._a.ndim

    @property
    def size(self):
        return self._a.size

    @property
    def T(self):
        return StrictArray(self._a.T)

    def __getattr__(self, name):
        if name.startswith("__"):                                 # no __array_interface__ and the like
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr)
        what = f"StrictArray.{name}"

        def method(*args, **kwargs):
            return _wrap(attr(*_unwrap(args, what), **_unwrap(kwargs, what)))
        return method

    def __getitem__(self, key):
        return _wrap(self._a[_index(key)])

    def __setitem__(self, key, value):
        if not isinstance(value, (StrictArray, numbers.Number, np.generic, bool)):
            _refuse(f"storing a {type(value).__name__} into a StrictArray")
        self._a[_index(key)] = _unwrap(value, "__setitem__")

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (StrictArray(np.asarray(row)) for row in self._a)

    def _scalar(self, kind):
        if self._a.size != 1:
            raise TypeError(f"only a one-element StrictArray converts to {kind.__name__}, "
                            f"got shape {self._a.shape}")
        return kind(self._a.reshape(()))

    def __float__(self):
        return self._scalar(float)

    def __int__(self):
        return self._scalar(int)

    def __bool__(self):
        return self._scalar(bool)

    def __complex__(self):
        return self._scalar(complex)

    def __format__(self, spec):
        return format(self._a.item(), spec) if self._a.size == 1 and self._a.ndim == 0 else \
            format(repr(self), spec)

    def __repr__(self):
        return f"StrictArray({self._a!r})"

    __add__, __radd__ = _binary(np.add)
    __sub__, __rsub__ = _binary(np.subtract)
    __mul__, __rmul__ = _binary(np.multiply)
    __truediv__, __rtruediv__ = _binary(np.true_divide)
    __floordiv__, __rfloordiv__ = _binary(np.floor_divide)
    __mod__, __rmod__ = _binary(np.remainder)
    __pow__, __rpow__ = _binary(np.power)
    __matmul__, __rmatmul__ = _binary(np.matmul)
    __and__, __rand__ = _binary(np.bitwise_and)
    __or__, __ror__ = _binary(np.bitwise_or)
    __xor__, __rxor__ = _binary(np.bitwise_xor)
    __lshift__, __rlshift__ = _binary(np.left_shift)
    __rshift__, __rrshift__ = _binary(np.right_shift)
    __iadd__, __isub__ = _inplace(np.add), _inplace(np.subtract)
    __imul__, __itruediv__ = _inplace(np.multiply), _inplace(np.true_divide)
    __ipow__, __ifloordiv__ = _inplace(np.power), _inplace(np.floor_divide)
    __iand__, __ior__, __ixor__ = _inplace(np.bitwise_and), _inplace(np.bitwise_or), _inplace(np.bitwise_xor)
    __lt__, _ = _binary(np.less)
    __le__, _ = _binary(np.less_equal)
    __gt__, _ = _binary(np.greater)
    __ge__, _ = _binary(np.greater_equal)
    __eq__, _ = _binary(np.equal)
    __ne__, _ = _binary(np.not_equal)

    def __neg__(self):
        return np.negative(self)

    def __pos__(self):
        return np.positive(self)

    def __abs__(self):
        return np.absolute(self)

    def __invert__(self):
        return np.invert(self)


class _Function:
    """A NumPy function (or ufunc) seen through the strict module: no NumPy arrays in, StrictArrays out."""

    def __init__(self, fn, name, host_ok=False):
        self._fn, self._name, self._host_ok = fn, name, host_ok

    def __call__(self, *args, **kwargs):
        what = f"strict.{self._name}"
        return _wrap(self._fn(*_unwrap(args, what, self._host_ok), **_unwrap(kwargs, what, self._host_ok)))

    def __getattr__(self, name):                                  # ufunc methods: reduce, outer, at, ...
        attr = getattr(self._fn, name)
        if name == "at":
            return lambda a, idx, *rest: attr(_unwrap(a, "at"), _index(idx), *_unwrap(rest, "at"))
        return _Function(attr, f"{self._name}.{name}") if callable(attr) else attr


class StrictGenerator:
    """numpy.random.Generator's draws as StrictArrays (the part CuPy's Generator plays)."""

    def __init__(self, seed=None):
        self._g = seed._g if isinstance(seed, StrictGenerator) else np.random.default_rng(seed)

    def __getattr__(self, name):
        return _Function(getattr(self._g, name), f"random.Generator.{name}")


class _Random:
    """strict.random: default_rng and the Generator type."""
    Generator = StrictGenerator

    @staticmethod
    def default_rng(seed=None):
        return StrictGenerator(seed)


class StrictModule:
    """The module of StrictArrays: numpy's namespace, each function returning StrictArrays.

    asarray / array / ascontiguousarray also take NumPy arrays: the explicit transfer to the device.
    """

    _HOST_OK = ("asarray", "array", "asanyarray", "ascontiguousarray")
    __name__ = "strict"
    ndarray = StrictArray
    random = _Random()

    def __init__(self, namespace=np, prefix=""):
        self._ns, self._prefix = namespace, prefix

    def __getattr__(self, name):
        attr = getattr(self._ns, name)
        if isinstance(attr, type) or not callable(attr):         # dtypes, errstate, finfo, inf, pi, ...
            return attr
        return _Function(attr, self._prefix + name, host_ok=name in self._HOST_OK)

    @property
    def linalg(self):
        return StrictModule(np.linalg, "linalg.")

    @property
    def lib(self):
        """lib.stride_tricks.as_strided, which CuPy has too: a strided view of a StrictArray's memory."""
        as_strided = _Function(np.lib.stride_tricks.as_strided, "lib.stride_tricks.as_strided")
        return SimpleNamespace(stride_tricks=SimpleNamespace(as_strided=as_strided))

    @staticmethod
    def asnumpy(a):
        """The explicit transfer back, as cupy.asnumpy."""
        return a.get() if isinstance(a, StrictArray) else np.asarray(a)

    def __repr__(self):
        return "<module 'strict' (a NumPy-backed double of an accelerator array module)>"


strict = StrictModule()


def to_strict(tree):
    """Every NumPy array in a dict / list / tuple (or a single array) moved to StrictArrays."""
    if isinstance(tree, np.ndarray):
        return strict.asarray(tree)
    if isinstance(tree, dict):
        return {k: to_strict(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(to_strict(v) for v in tree)
    return tree


def to_numpy(tree):
    """The inverse of to_strict."""
    if isinstance(tree, StrictArray):
        return tree.get()
    if isinstance(tree, dict):
        return {k: to_numpy(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(to_numpy(v) for v in tree)
    return tree
