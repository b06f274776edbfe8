"""Read what a file declares without trusting it: bounded JSON and bounded arrays.

A damaged or hostile results file can hold a ``parameters`` attribute of JSON nested ten
thousand levels deep (Python's parser recurses and dies with RecursionError) or declare a
dataset of 20 GB in a file of a few kilobytes (reading it allocates the 20 GB, or dies with
MemoryError). These two readers check first and raise one :class:`~nwb_synergy.errors.InputError`
naming the file, the object and the problem.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["MAX_ARRAY_BYTES", "MAX_JSON_DEPTH", "json_depth", "load_json", "read_array"]

#: deepest nesting of JSON accepted (nwb_synergy writes at most 5 levels)
MAX_JSON_DEPTH = 100
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")

#: largest dataset read into memory by default, bytes (1 GiB)
MAX_ARRAY_BYTES = 1 << 30


def json_depth(text: str) -> int:
    """Deepest nesting of ``[`` and ``{`` in JSON text, found without recursion.

    Brackets inside strings are not counted. The text need not be valid JSON.

    Parameters
    ----------
    text
        JSON text.

    Returns
    -------
    int
        0 for a scalar, 1 for a flat list or object, 2 for a list of lists ...
    """
    brackets = "".join(_BRACKET.findall(_STRING.sub("", text)))
    if not brackets:
        return 0
    steps = np.frombuffer(brackets.encode("ascii"), dtype=np.uint8)
    depth = np.cumsum(np.where((steps == ord("[")) | (steps == ord("{")), 1, -1))
    return int(max(depth.max(), 0))


def load_json(
    text: str | bytes,
    *,
    file: object | None = None,
    obj: str | None = None,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """Parse JSON read from a file, refusing text nested deeper than ``max_depth``.

    Parameters
    ----------
    text
        JSON text (``bytes`` and NumPy string scalars, as h5py returns attributes, are decoded
        as UTF-8).
    file, obj
        Where the text came from, for the error message (e.g. the file and
        ``processing/behavior/MuscleSynergyNMF/parameters``).
    max_depth
        Deepest nesting of lists and objects accepted.

    Returns
    -------
    Any
        The parsed value.

    Raises
    ------
    InputError
        Not text, not UTF-8, nested deeper than ``max_depth``, or not valid JSON.
    """
    if isinstance(text, (bytes, np.bytes_)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as err:
            raise InputError(f"JSON text is not UTF-8 ({err})", file=file, obj=obj) from None
    if not isinstance(text, str):
        raise InputError(f"expected JSON text, found {type(text).__name__}", file=file, obj=obj)
    depth = json_depth(text)
    if depth > max_depth:
        raise InputError(
            f"JSON nested {depth} levels deep (at most {max_depth} accepted): the file is "
            "damaged or was not written by nwb_synergy",
            file=file,
            obj=obj,
        )
    try:
        return json.loads(text)
    except ValueError as err:
        raise InputError(f"not valid JSON ({err})", file=file, obj=obj) from None


def _gigabytes(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.3g} GB" if n_bytes >= 1e8 else f"{n_bytes / 1e6:.3g} MB"


def read_array(
    dataset: Any,
    *,
    file: object | None = None,
    obj: str | None = None,
    max_bytes: int = MAX_ARRAY_BYTES,
) -> np.ndarray:
    """Read a whole dataset into memory after checking the size it declares.

    Parameters
    ----------
    dataset
        An h5py dataset, or anything with ``shape`` and ``dtype`` that slices with ``[:]``
        (hdmf's wrappers of datasets of references too); lists and arrays already in memory
        are returned as arrays.
    file, obj
        Where the dataset is, for the error message.
    max_bytes
        Largest size accepted (shape times item size), bytes.

    Returns
    -------
    numpy.ndarray
        The data, shape as declared.

    Raises
    ------
    InputError
        The declared size exceeds ``max_bytes``, or reading it runs out of memory.
    """
    shape = getattr(dataset, "shape", None)
    dtype = getattr(dataset, "dtype", None)
    if shape is None or dtype is None or isinstance(dataset, np.ndarray):
        return np.asarray(dataset)
    n_items = math.prod(int(s) for s in shape)
    n_bytes = n_items * np.dtype(dtype).itemsize
    if n_bytes > max_bytes:
        raise InputError(
            f"declares a dataset of shape {tuple(int(s) for s in shape)} and type {dtype} "
            f"({_gigabytes(n_bytes)}), more than the {_gigabytes(max_bytes)} read into "
            "memory: the file is damaged or was not written by nwb_synergy",
            file=file,
            obj=obj,
        )
    try:
        return np.asarray(dataset[:] if len(shape) else dataset[()])
    except MemoryError:
        raise InputError(
            f"not enough memory to read this dataset ({_gigabytes(n_bytes)})",
            file=file,
            obj=obj,
        ) from None
