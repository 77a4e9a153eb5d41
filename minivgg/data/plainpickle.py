"""Reading a pickle without running it: plain data, and NumPy arrays made here from plain bytes.

Python's unpickler calls whatever the file names (that is how it rebuilds objects). An allow-list
of NumPy's rebuilding functions is not enough: the file still chooses their arguments
(``_reconstruct(ndarray, (600000, 3072), ...)`` with no data returns 1.8 GB of leftover heap), can
set attributes on them (BUILD on a function rewrites its ``__defaults__``), and declares byte
strings of any length that CPython allocates before finding the file too short. So ``load_plain``
interprets the opcodes itself: ``pickletools.genops`` parses them (reading no more bytes than the
file holds) and the table below builds only None, bools, ints, floats, str, bytes, tuples, lists
and dicts. The globals a NumPy pickle names are replaced by stand-ins that record a dtype, a
shape and the raw bytes; an array is made only when its declared size equals the bytes present.
Any other global, object construction, extension code or out-of-band buffer is refused.

Limits (``MAX_OPS`` below): a pickle of more than 2 million opcodes is refused before they are
all run (CIFAR-100's train file has about 350 thousand), which bounds the time and the number of
Python objects a file can make; everything else it holds comes from bytes that are in the file.
"""

import io
import math
import pickletools
import re

import numpy as np

from ..errors import CorruptFileError, FileTooLargeError

MAX_OPS = 2_000_000
_DTYPE = re.compile(r"[<>|=]?[biuf][1248]")     # plain numbers only: no objects, no records


def _text(value):
    """Python 2's str arrives as bytes (read as pickle's encoding="bytes" does)."""
    return value.decode("latin-1") if isinstance(value, bytes) else value


class _Marker:
    """A global of a NumPy pickle, stood in for. BUILD on it (setting its attributes) is refused."""

    def __init__(self, name, make=None):
        self.name, self.make = name, make

    def __call__(self, *args):
        if self.make is None:
            raise CorruptFileError(f"{self.name} is not callable here")
        return self.make(*args)

    def __setstate__(self, state):
        raise CorruptFileError(f"the file tries to modify {self.name}")


class _DType:
    """numpy.dtype(name) with the byte order BUILD gives it."""

    def __init__(self, name, align=False, copy=True):
        name = _text(name)
        if not isinstance(name, str) or not _DTYPE.fullmatch(name):
            raise CorruptFileError(f"dtype {name!r} is not a plain number type")
        self.name, self.order = name, "="

    def __setstate__(self, state):
        order = _text(state[1])
        self.order = order if order in ("<", ">") else "|"

    def numpy(self):
        return np.dtype(self.name).newbyteorder(self.order if self.order != "|" else "=")


class _Array:
    """An ndarray to be: dtype, shape, order and the raw bytes, checked against each other."""

    def __init__(self, data=None, dtype=None, shape=(), order="C"):
        self.data, self.dtype, self.shape, self.order = data, dtype, shape, order

    def __setstate__(self, state):        # ndarray's: (version,) shape, dtype, is_fortran, data
        self.shape, self.dtype, fortran, self.data = state[-4:]
        self.order = "F" if fortran else "C"

    def numpy(self):
        if not isinstance(self.data, (bytes, bytearray)):
            raise CorruptFileError("an array without its data (an uninitialised array)")
        if not isinstance(self.dtype, _DType):
            raise CorruptFileError("an array without a plain dtype")
        dtype = self.dtype.numpy()
        if not (isinstance(self.shape, tuple) and all(type(n) is int and n >= 0
                                                      for n in self.shape)):
            raise CorruptFileError(f"an array's shape is {self.shape!r}")
        declared = math.prod(self.shape) * dtype.itemsize
        if declared != len(self.data):
            raise CorruptFileError(f"an array declares shape {self.shape} of {dtype} "
                                   f"({declared} bytes) but holds {len(self.data)} bytes")
        return np.frombuffer(self.data, dtype).reshape(self.shape, order=self.order)


def _reconstruct(cls, shape, typecode):
    if cls is not _NDARRAY:
        raise CorruptFileError("_reconstruct of something other than an ndarray")
    return _Array()                        # its BUILD state brings shape, dtype and data


def _frombuffer(data, dtype, shape, order):
    return _Array(data, dtype, shape, order)


def _scalar(dtype, data):
    return _Array(data, dtype, ()).numpy()[()]


def _latin1(text, encoding):
    if not isinstance(text, str) or encoding != "latin1":
        raise CorruptFileError("_codecs.encode with other than a latin1 str")
    return text.encode("latin-1")


_NDARRAY = _Marker("numpy.ndarray")
_DTYPE_MARKER = _Marker("numpy.dtype", _DType)
_GLOBALS = {  # what NumPy pickles (and Python 2's) name, under NumPy 1's and 2's module names
    **{(module, name): _Marker(f"{module}.{name}", make) for module in
       ("numpy.core.multiarray", "numpy._core.multiarray")
       for name, make in (("_reconstruct", _reconstruct), ("scalar", _scalar))},
    **{(module, "_frombuffer"): _Marker(f"{module}._frombuffer", _frombuffer)
       for module in ("numpy.core.numeric", "numpy._core.numeric")},
    ("numpy", "ndarray"): _NDARRAY, ("numpy", "dtype"): _DTYPE_MARKER,
    ("_codecs", "encode"): _Marker("_codecs.encode", _latin1),  # protocol 2's spelling of bytes
}


def _global(module, name):
    if (module, name) not in _GLOBALS:
        raise CorruptFileError(f"refusing to load {module}.{name}")
    return _GLOBALS[module, name]


# Opcodes whose argument is the value to push, with how to make it (None: as it is). Python 2's
# str (BINSTRING, what CIFAR's official files hold) is read as bytes: pickle's encoding="bytes".
_VALUES = {
    **dict.fromkeys(["INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT",
                     "BINFLOAT", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
                     "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8"]),
    **dict.fromkeys(["STRING", "BINSTRING", "SHORT_BINSTRING"], lambda s: s.encode("latin-1")),
}
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False, "EMPTY_TUPLE": ()}
_TUPLES = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}
_MEMO_GETS = {"GET", "BINGET", "LONG_BINGET"}
_MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}


class _Machine:
    """The pickle virtual machine for plain data: a stack, the marks' saved stacks, the memo.
    ``op_NAME(arg)`` runs opcode NAME; an opcode with no method here is refused."""

    def __init__(self):
        self.stack, self.marks, self.memo = [], [], {}

    def step(self, name, arg):
        if name in _VALUES:
            make = _VALUES[name]
            self.stack.append(arg if make is None else make(arg))
        elif name in _CONSTANTS:
            self.stack.append(_CONSTANTS[name])
        elif name in _TUPLES:
            n = _TUPLES[name]
            items = tuple(self.stack[-n:])
            if len(items) != n:
                raise CorruptFileError(f"{name} with {len(items)} items on the stack")
            del self.stack[-n:]
            self.stack.append(items)
        elif name in _MEMO_GETS:
            self.stack.append(self.memo[arg])
        elif name in _MEMO_PUTS:
            self.memo[arg] = self.stack[-1]
        elif hasattr(self, f"op_{name}"):
            getattr(self, f"op_{name}")(arg)
        else:
            raise CorruptFileError(f"opcode {name} is not allowed (it builds objects, not data)")

    def pop_mark(self):
        items, self.stack = self.stack, self.marks.pop()
        return items

    def op_PROTO(self, arg):
        pass

    op_FRAME = op_PROTO

    def op_MARK(self, arg):
        self.marks.append(self.stack)
        self.stack = []

    def op_POP(self, arg):
        self.stack.pop()

    def op_POP_MARK(self, arg):
        self.pop_mark()

    def op_DUP(self, arg):
        self.stack.append(self.stack[-1])

    def op_MEMOIZE(self, arg):
        self.memo[len(self.memo)] = self.stack[-1]

    def op_TUPLE(self, arg):
        items = tuple(self.pop_mark())      # first: popping the mark replaces self.stack
        self.stack.append(items)

    def op_EMPTY_LIST(self, arg):
        self.stack.append([])

    def op_LIST(self, arg):
        items = self.pop_mark()
        self.stack.append(items)

    def op_APPEND(self, arg):
        value = self.stack.pop()
        self.stack[-1].append(value)

    def op_APPENDS(self, arg):
        items = self.pop_mark()
        self.stack[-1].extend(items)

    def op_EMPTY_DICT(self, arg):
        self.stack.append({})

    def op_DICT(self, arg):
        items = self.pop_mark()
        self.stack.append({})
        self.op_SETITEMS(None, items)

    def op_SETITEM(self, arg):
        value, key = self.stack.pop(), self.stack.pop()
        self.stack[-1][key] = value

    def op_SETITEMS(self, arg, items=None):
        items = self.pop_mark() if items is None else items
        target = self.stack[-1]
        for key, value in zip(items[::2], items[1::2]):
            target[key] = value

    def op_GLOBAL(self, arg):
        self.stack.append(_global(*arg.split(" ", 1)))

    def op_STACK_GLOBAL(self, arg):
        name, module = self.stack.pop(), self.stack.pop()
        self.stack.append(_global(module, name))

    def op_REDUCE(self, arg):
        args, function = self.stack.pop(), self.stack.pop()
        if not isinstance(function, _Marker) or not isinstance(args, tuple):
            raise CorruptFileError(f"REDUCE calls a {type(function).__name__}")
        self.stack.append(function(*args))

    def op_BUILD(self, arg):
        state, target = self.stack.pop(), self.stack[-1]
        if not isinstance(target, (_Marker, _DType, _Array)):
            raise CorruptFileError(f"BUILD on a {type(target).__name__}")
        target.__setstate__(state)


def _global(module, name):
    if (module, name) not in _GLOBALS:
        raise CorruptFileError(f"refusing to load {module}.{name}")
    return _GLOBALS[module, name]


def _finish(value):
    """An _Array as the ndarray it describes; anything else as it is."""
    return value.numpy() if isinstance(value, _Array) else value


def load_plain(raw):
    """The object pickled in ``raw`` (bytes), built as plain data (see the module docstring).

    A dict's values that are arrays come back as read-only ndarrays viewing ``raw``'s copy of
    the bytes; arrays deeper down stay undecoded and are refused by the caller's type checks.
    Raises CorruptFileError (the reason, without the file's name: the caller adds it) for
    anything malformed or not plain data, FileTooLargeError past ``MAX_OPS`` opcodes.
    """
    machine = _Machine()
    try:
        for count, (opcode, arg, _) in enumerate(pickletools.genops(io.BytesIO(raw))):
            if count >= MAX_OPS:
                raise FileTooLargeError(f"more than {MAX_OPS} pickle opcodes")
            if opcode.name == "STOP":
                break
            machine.step(opcode.name, arg)
        if machine.marks or len(machine.stack) != 1:
            raise CorruptFileError("the pickle does not end with one object")
        value = machine.stack[0]
        if isinstance(value, dict):
            value = {key: _finish(item) for key, item in value.items()}
        return _finish(value)
    except CorruptFileError:
        raise
    except Exception as error:      # nothing foreign runs in here: any failure is the file's
        raise CorruptFileError(f"not a readable pickle ({type(error).__name__}: "
                               f"{str(error)[:200]})") from None
