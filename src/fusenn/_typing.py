"""Type aliases shared by fusenn's annotations (not part of the public API).

``Array`` is any NumPy array (the float32 or float64 arrays fusenn computes with, or the
integer label vectors); ``ArrayLike`` what a user may pass where an array is converted;
``Logs`` the dictionary of logged values the Trainer gives its callbacks.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional, Union

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]
ArrayLike = npt.ArrayLike
DTypeLike = Union[npt.DTypeLike, None]
FloatArray = npt.NDArray[np.floating[Any]]
Logs = Optional[Dict[str, Any]]
Seed = Union[None, int, np.random.Generator]
PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["Array", "ArrayLike", "DTypeLike", "FloatArray", "Logs", "PathLike", "Seed"]
