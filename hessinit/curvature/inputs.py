"""The door of hessinit.curvature: model, inputs, labels and layer checked before any number.

Every public function of :mod:`hessinit.curvature` computes the Hessian of the mean softmax
cross-entropy L = (1/B) sum_i (logsumexp(z_i) - z_{i, y_i}) of logits z_i = model(x_i). It can
only be that Hessian if

- the model is built and outputs logits: a final ``softmax`` or ``sigmoid`` (on a ``Dense`` or
  ``Conv2D`` layer, an ``Activation`` or ``Softmax`` layer) would make it the Hessian of
  cross-entropy applied to probabilities, another loss. Such models are **refused** with a
  message saying to pass the logits model (we do not strip the activation silently: the caller
  then knows which network the numbers are of);
- no layer has sparse gradients (``Embedding``: refused, no route of hessinit handles
  ``tf.IndexedSlices``);
- ``x`` has the model's input shape and as many samples as ``y`` has labels;
- the labels are integer classes in [0, K). One-hot labels (B, K), each row a single 1, are
  accepted and read as their argmax; other (B, K) labels (soft labels) are refused.

:func:`check_call` does all of this once per call and returns x and y as tensors;
:func:`resolve_weight` turns a layer name, layer object or variable into one trainable variable.

Imports: numpy, TensorFlow, Keras and :mod:`hessinit.curvature.graph`.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from .graph import SPARSE_LAYERS, all_layers, functional_graph, is_subclassed

#: Final activations that turn logits into probabilities.
PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid", "log_softmax")


def _activation_of(op):
    """The name of the activation ``op`` ends with, or None."""
    if isinstance(op, keras.layers.Softmax):
        return "softmax"
    act = getattr(op, "activation", None)
    if act is None:
        return None
    name = getattr(act, "__name__", None) or str(act)
    return name if name in PROBABILITY_ACTIVATIONS else None


def check_model(model):
    """Raise if ``model`` is unbuilt, has an Embedding layer or outputs probabilities.

    Args:
        model: a Keras model.

    Raises:
        ValueError: an unbuilt model, or a final softmax/sigmoid.
        TypeError: a layer with sparse gradients (Embedding), or not a Keras model.

    Example:
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, "softmax")])
        >>> try:  # doctest: +ELLIPSIS
        ...     check_model(model)
        ... except ValueError as error:
        ...     print(error)
        the last layer 'dense...' of model 'sequential...' applies softmax: ...
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"expected a keras.Model, got {type(model).__name__}")
    if not model.built or (isinstance(model, keras.Sequential) and model._functional is None):
        raise ValueError(
            f"model {model.name!r} is not built: give it a keras.Input (keras.Sequential("
            "[keras.Input(shape), ...])) or call it once on a batch before asking for curvature"
        )
    for layer in all_layers(model):
        if isinstance(layer, SPARSE_LAYERS):
            raise TypeError(
                f"layer {layer.name!r} ({type(layer).__name__}) has sparse gradients "
                "(tf.IndexedSlices), which hessinit.curvature does not handle: compute the "
                "embedded inputs first and pass a model that starts after the embedding"
            )
    if is_subclassed(model):
        return
    outputs = functional_graph(model).outputs
    if len(outputs) != 1:
        raise ValueError(f"model {model.name!r} has {len(outputs)} outputs; need one of logits")
    last = outputs[0]._keras_history.operation
    act = _activation_of(last)
    if act is not None:
        raise ValueError(
            f"the last layer {last.name!r} of model {model.name!r} applies {act}: hessinit "
            "takes the Hessian of softmax cross-entropy on logits, and on probabilities it "
            "would be the Hessian of another loss. Pass a model that outputs logits (the same "
            "layers with activation=None on the last, or keras.Model(model.inputs, "
            "<its pre-activation>))"
        )


def _eager_numpy(t):
    """``t`` as a numpy array, or None for a symbolic tensor (inside ``tf.function``)."""
    if tf.is_tensor(t):
        return t.numpy() if hasattr(t, "numpy") and tf.executing_eagerly() else None
    return np.asarray(t)


def check_labels(y, batch, classes):
    """Integer labels (B,) in [0, K) from integer, integral-float or one-hot labels.

    Args:
        y: labels, shape (B,), (B, 1) or one-hot (B, K).
        batch: B, the number of inputs.
        classes: K, the number of logits.

    Returns:
        The labels as an int32 tensor of shape (B,).

    Raises:
        ValueError: a label count other than B, labels outside [0, K), non-integer labels or
            (B, K) labels that are not one-hot.

    Example:
        >>> check_labels(np.eye(3)[[2, 0]], 2, 3).numpy()  # one-hot: read as the argmax
        array([2, 0], dtype=int32)
        >>> try:
        ...     check_labels([0, 9], 2, 4)
        ... except ValueError as error:
        ...     print(error)
        labels must be integer classes in [0, 4) (the model has 4 logits); got 9
    """
    values = _eager_numpy(y)
    if values is None:  # traced: the shapes are all one can check
        return tf.cast(tf.reshape(y, [-1]), tf.int32)
    if values.ndim == 2 and values.shape[1] == classes and classes > 1:
        one_hot = np.all((values == 0) | (values == 1)) and np.all(values.sum(axis=1) == 1)
        if not one_hot:
            raise ValueError(
                f"labels of shape {values.shape} are not one-hot (soft labels): pass integer "
                "classes, shape (B,)"
            )
        values = np.argmax(values, axis=1)
    if values.ndim > 1 and values.size == values.shape[0]:
        values = values.reshape(-1)
    if values.ndim != 1:
        raise ValueError(
            f"labels must have shape (B,) or one-hot (B, {classes}); got {values.shape}"
        )
    if len(values) != batch:
        raise ValueError(f"x has {batch} samples but y has {len(values)} labels")
    if values.size and not np.all(np.isfinite(values) & (values == np.round(values))):
        raise ValueError("labels must be integer classes, got non-integer values")
    bad = values[(values < 0) | (values >= classes)]
    if bad.size:
        raise ValueError(
            f"labels must be integer classes in [0, {classes}) (the model has {classes} "
            f"logits); got {bad.flat[0]:g}"
        )
    return tf.constant(values.astype(np.int32))


def _input_spec(model):
    """The model's input shape without the batch axis, or None (subclassed models)."""
    if is_subclassed(model):
        return None
    inputs = functional_graph(model).inputs
    return tuple(inputs[0].shape[1:]) if len(inputs) == 1 else None


def check_call(model, x, y):
    """Check a call's model, inputs and labels (module docstring); return x and y as tensors.

    Args:
        model: a Keras model mapping inputs to logits.
        x: inputs, shape (B, ...); numpy inputs are cast to the model's dtype.
        y: labels, as :func:`check_labels` accepts.

    Returns:
        ``(x, y)``: x as a tensor in the model's dtype, y as int32 (B,).

    Raises:
        ValueError, TypeError: as :func:`check_model` and :func:`check_labels`, or ``x`` of
            another shape than the model's input.

    Example:
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        >>> try:
        ...     check_call(model, np.ones((4, 5)), [0, 1, 0, 1])
        ... except ValueError as error:
        ...     print(error)
        x has per-sample shape (5,) but model 'sequential...' takes (3,)
    """
    check_model(model)
    dtype = model.trainable_variables[0].dtype if model.trainable_variables else "float32"
    if not tf.is_tensor(x):
        x = np.asarray(x)
    spec = _input_spec(model)
    if spec is not None:
        shape = tuple(x.shape[1:])
        fits = len(shape) == len(spec) and all(
            s is None or d is None or int(s) == int(d) for s, d in zip(spec, shape, strict=True)
        )
        if not fits:
            raise ValueError(
                f"x has per-sample shape {shape} but model {model.name!r} takes {spec}"
            )
    x = tf.convert_to_tensor(x, dtype) if not tf.is_tensor(x) else x
    if x.dtype != tf.as_dtype(dtype) and x.dtype.is_floating:
        x = tf.cast(x, dtype)
    classes = _num_logits(model, x)
    if x.shape[0] is None:  # traced with an unknown batch: nothing more to check
        return x, tf.cast(tf.reshape(y, [-1]), tf.int32)
    return x, check_labels(y, int(x.shape[0]), classes)


def _num_logits(model, x):
    """K, from the graph's output shape, or from one sample's forward pass (subclassed)."""
    if not is_subclassed(model):
        return int(functional_graph(model).outputs[0].shape[-1])
    z = model(x[:1], training=False)
    probs = z.numpy()
    if z.shape[-1] > 1 and np.all(probs >= 0) and np.allclose(probs.sum(-1), 1, atol=1e-6):
        raise ValueError(
            f"model {model.name!r} outputs probabilities (rows >= 0 summing to 1): hessinit "
            "takes the Hessian of softmax cross-entropy on logits; return the logits from call"
        )
    return int(z.shape[-1])


def resolve_weight(model, layer, weight=None):
    """One trainable variable of ``model`` from a layer name, a layer, or a variable.

    Args:
        model: a Keras model.
        layer: a layer name such as ``"conv1"``, a layer of the model, or one of
            ``model.trainable_variables``. Integers are refused (``0`` would mean the first
            Dense layer on one model and the first layer on another): give the name.
        weight: for a layer, the weight's name (``"kernel"``, ``"bias"``, ``"gamma"``, ...);
            ``None``: the kernel if the layer has one, else its first trainable weight.

    Returns:
        The ``keras.Variable``.

    Raises:
        ValueError: no such layer or weight, or a variable that is not the model's.
        TypeError: ``layer`` of another kind.

    Example:
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
        >>> resolve_weight(model, "d", "bias").name
        'bias'
        >>> try:
        ...     resolve_weight(model, "e")
        ... except ValueError as error:
        ...     print(error)
        model 'sequential...' has no layer named 'e'; its layers with weights are ['d']
    """
    variables = list(model.trainable_variables)
    if isinstance(layer, keras.Variable | tf.Variable):
        for v in variables:
            if v is layer or getattr(v, "value", None) is layer:
                return v
        raise ValueError(
            f"{getattr(layer, 'path', layer.name)!r} is not a trainable weight of model "
            f"{model.name!r}"
        )
    weighted = [lyr for lyr in all_layers(model) if lyr.trainable_weights]
    if isinstance(layer, str):
        found = [lyr for lyr in all_layers(model) if lyr.name == layer]
        if not found:
            names = [lyr.name for lyr in weighted]
            raise ValueError(
                f"model {model.name!r} has no layer named {layer!r}; its layers with weights "
                f"are {names}"
            )
        layer = found[0]
    elif isinstance(layer, keras.layers.Layer):
        if not any(lyr is layer for lyr in all_layers(model)):
            raise ValueError(f"layer {layer.name!r} is not a layer of model {model.name!r}")
    else:
        raise TypeError(
            f"layer must be a layer name, a layer or a trainable variable of the model, got "
            f"{layer!r}; integer positions are not accepted (give the layer's name)"
        )
    own = layer.trainable_weights
    if not own:
        raise ValueError(f"layer {layer.name!r} has no trainable weights")
    if weight is None:
        kernel = getattr(layer, "kernel", None)
        return next((v for v in own if v is kernel), own[0])
    for v in own:
        if v.name == weight or v.path.endswith("/" + weight):
            return v
    raise ValueError(
        f"layer {layer.name!r} has no weight {weight!r}; it has {[v.name for v in own]}"
    )
