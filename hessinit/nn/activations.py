"""The activation registry: everything hessinit knows about an activation, in one table.

A hidden dense layer computes h_i = f(a_i) from its pre-activation a_i = W^T x_i + b, with f acting
elementwise. Each :class:`Activation` entry of :data:`REGISTRY` says whether f is piecewise
linear (f'' = 0 almost everywhere, so the curvature term R_i of the blocks M_i = A_i + R_i
vanishes on a layer's own Hessian block) and gives numpy references for f, f' and f'' that the
tests compare TensorFlow's autodiff with. Every entry acts elementwise, which is what lets the
exact curvature code use its fast backward recursion.

The models (:func:`hessinit.nn.models.mlp`, through :func:`activation_name`), the backward
recursion (:mod:`hessinit.curvature.blocks`), its zero-curvature shortcut and the tests all read
this table; nothing else lists activation names. An activation missing from it still works: the
curvature code then takes per-sample nested autodiff, and says so once (:func:`is_elementwise`).
Supporting a new elementwise activation on the fast path is one entry in ``_ENTRIES``.

Imports: numpy, scipy and Keras only.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
from scipy.special import expit, ndtr

_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


@dataclass(frozen=True)
class Activation:
    """One elementwise activation f and what the curvature code may assume about it.

    Attributes:
        name: the name Keras serializes the activation to (``keras.activations.serialize``),
            the registry's key.
        piecewise_linear: f'' = 0 almost everywhere, so the curvature term R of a layer's own
            Hessian block vanishes when every activation above the layer has this property.
        f: numpy reference for f (array in, array out), for tests.
        df: numpy reference for f'.
        d2f: numpy reference for f'' (0 at the kinks of piecewise-linear activations).

    Example:
        >>> relu = REGISTRY["relu"]
        >>> relu.piecewise_linear, relu.df(np.array([-1.0, 2.0])), relu.d2f(np.array([2.0]))
        (True, array([0., 1.]), array([0.]))
    """

    name: str
    piecewise_linear: bool
    f: Callable[[np.ndarray], np.ndarray]
    df: Callable[[np.ndarray], np.ndarray]
    d2f: Callable[[np.ndarray], np.ndarray]


def _phi(a):
    """The standard normal density."""
    return np.exp(-0.5 * a * a) / np.sqrt(2 * np.pi)


def _elu(a, alpha=1.0):
    """ELU, f(a) = a for a > 0 and alpha (e^a - 1) otherwise."""
    return np.where(a > 0, a, alpha * np.expm1(np.minimum(a, 0)))


def _elu_d(a, alpha=1.0):
    """The first derivative of :func:`_elu`."""
    return np.where(a > 0, 1.0, alpha * np.exp(np.minimum(a, 0)))


def _elu_d2(a, alpha=1.0):
    """The second derivative of :func:`_elu` (0 for a > 0)."""
    return np.where(a > 0, 0.0, alpha * np.exp(np.minimum(a, 0)))


_ENTRIES = (
    Activation("linear", True, lambda a: a, np.ones_like, np.zeros_like),
    Activation("relu", True, lambda a: np.maximum(a, 0), lambda a: (a > 0) * 1.0, np.zeros_like),
    Activation(  # Keras' default negative_slope 0.2, which TensorFlow stores as a float32
        "leaky_relu",
        True,
        lambda a: np.where(a > 0, a, float(np.float32(0.2)) * a),
        lambda a: np.where(a > 0, 1.0, float(np.float32(0.2))),
        np.zeros_like,
    ),
    Activation(
        "tanh",
        False,
        np.tanh,
        lambda a: 1 - np.tanh(a) ** 2,
        lambda a: -2 * np.tanh(a) * (1 - np.tanh(a) ** 2),
    ),
    Activation(
        "sigmoid",
        False,
        expit,
        lambda a: expit(a) * (1 - expit(a)),
        lambda a: expit(a) * (1 - expit(a)) * (1 - 2 * expit(a)),
    ),
    Activation(
        "softplus",
        False,
        lambda a: np.logaddexp(0, a),
        expit,
        lambda a: expit(a) * (1 - expit(a)),
    ),
    Activation(
        "gelu",
        False,
        lambda a: a * ndtr(a),
        lambda a: ndtr(a) + a * _phi(a),
        lambda a: _phi(a) * (2 - a * a),
    ),
    Activation("elu", False, _elu, _elu_d, _elu_d2),
    Activation(
        "selu",
        False,
        lambda a: _SELU_SCALE * _elu(a, _SELU_ALPHA),
        lambda a: _SELU_SCALE * _elu_d(a, _SELU_ALPHA),
        lambda a: _SELU_SCALE * _elu_d2(a, _SELU_ALPHA),
    ),
    Activation(
        "silu",
        False,
        lambda a: a * expit(a),
        lambda a: expit(a) * (1 + a * (1 - expit(a))),
        lambda a: expit(a) * (1 - expit(a)) * (2 + a * (1 - 2 * expit(a))),
    ),
)

#: The registry, serialized Keras name -> :class:`Activation`.
REGISTRY = {entry.name: entry for entry in _ENTRIES}

#: Names a user may pass to the models (``swish`` is Keras' other name for ``silu``).
ACTIVATIONS = (*REGISTRY, "swish")

_NOTICED: set[str] = set()


def activation_name(activation) -> str:
    """The registry name of a Keras activation given as a name or a function.

    Args:
        activation: a string such as ``"relu"`` or ``"swish"``, or a Keras activation function.

    Returns:
        The name Keras serializes it to, which is the registry's key for known activations.

    Raises:
        ValueError: Keras does not know the activation.

    Example:
        >>> activation_name("swish"), activation_name(keras.activations.relu)
        ('silu', 'relu')
        >>> activation_name("softmax")  # known to Keras, not in the registry
        'softmax'
    """
    try:
        fn = keras.activations.get(activation)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"unknown activation {activation!r}; use a Keras activation such as "
            f"{', '.join(ACTIVATIONS)}"
        ) from err
    name = keras.activations.serialize(fn)
    return name if isinstance(name, str) else str(name)


def is_elementwise(name: str) -> bool:
    """Whether activation ``name`` is in the registry, i.e. may take the fast backward recursion.

    An activation missing from the registry is not an error: the curvature code falls back on
    per-sample nested autodiff, and this function warns once per name that it does.

    Args:
        name: a serialized Keras activation name (:func:`activation_name`).

    Returns:
        ``True`` for registry entries, ``False`` (with a one-time ``UserWarning``) otherwise.

    Example:
        >>> is_elementwise("tanh")
        True
    """
    if name in REGISTRY:
        return True
    if name not in _NOTICED:
        _NOTICED.add(name)
        warnings.warn(
            f"activation {name!r} is not in hessinit.nn.activations.REGISTRY: its layers take "
            "per-sample nested autodiff, exact but slower; add an entry to use the fast path",
            UserWarning,
            stacklevel=3,
        )
    return False


def is_piecewise_linear(name: str) -> bool:
    """Whether f'' = 0 almost everywhere for activation ``name``.

    Args:
        name: a serialized Keras activation name (:func:`activation_name`).

    Returns:
        The entry's ``piecewise_linear`` flag; ``False`` for a name not in the registry (the
        curvature code then keeps R, which is exact either way).

    Example:
        >>> is_piecewise_linear("relu"), is_piecewise_linear("tanh"), is_piecewise_linear("?")
        (True, False, False)
    """
    entry = REGISTRY.get(name)
    return entry is not None and entry.piecewise_linear
