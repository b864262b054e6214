"""What the curvature code may assume about a Keras model, proved from its functional graph.

Every fast route of :mod:`hessinit.curvature` rebuilds part of the network from its layers: the
Kronecker route of a dense layer (:mod:`~hessinit.curvature.kronecker`) rewrites the model as the
chain z = f_L(W_L^T ... f_1(W_1^T x + b_1) ... + b_L); the per-tensor routes
(:mod:`~hessinit.curvature.tensors`) rerun its graph one operation at a time. Both are exact only
for the network the graph describes, so before either runs, this module walks the model's
functional graph (``model.operations`` and their call nodes) and proves:

- the model has a graph at all: a ``keras.Sequential`` or functional ``keras.Model`` built on a
  ``keras.Input``, not a subclassed model whose ``call`` is opaque Python;
- every operation is a layer of a supported type: a ``keras.ops`` call written between layers
  (``2 * d1(x) + 0.5``) is an operation of the graph the rebuilt network would miss;
- each layer is called once (a layer applied twice shares its weights between two places);
- for the dense-stack route, the operations form one chain of ``Flatten``, ``Dense`` and
  ``Dropout`` layers in the order of ``model.layers``.

:func:`dense_stack_issue` returns the first failed condition as a sentence naming the layer or
operation (``None`` when the route is proven); callers fall back to autodiff or raise with it.

It also holds the one forward pass that every product, norm, spectrum and estimate uses,
:func:`forward`, and so the one meaning of ``training``: ``training=True`` (the default across
hessinit.curvature) normalizes ``BatchNormalization`` by the batch's own statistics (the loss SGD
differentiates), ``training=False`` by the moving statistics (inference); dropout is off in both
(a random mask would make the Hessian random) and nothing is written back to the model.

Imports: Keras and TensorFlow only.
"""

from __future__ import annotations

import keras
import tensorflow as tf

#: The layers of a dense stack (the Kronecker route of :mod:`hessinit.curvature.kronecker`).
DENSE_STACK_LAYERS = (
    keras.layers.InputLayer,
    keras.layers.Flatten,
    keras.layers.Dense,
    keras.layers.Dropout,
)

#: Layers with sparse gradients (``tf.IndexedSlices``), which no route of hessinit handles.
SPARSE_LAYERS = (keras.layers.Embedding,)

#: The one default of ``training`` across hessinit.curvature (module docstring).
TRAINING = True


def is_subclassed(model) -> bool:
    """Whether ``model`` has no functional graph (a subclassed ``keras.Model``).

    Example:
        >>> is_subclassed(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
        False
    """
    graph = model._functional if isinstance(model, keras.Sequential) else model
    return graph is None or not hasattr(graph, "_run_through_graph")


def functional_graph(model):
    """The functional graph behind ``model`` (a built ``Sequential`` keeps one).

    Args:
        model: a Keras model.

    Returns:
        The ``keras.Model`` whose ``operations`` and call nodes describe the network.

    Raises:
        TypeError: ``model`` is subclassed or a ``Sequential`` built without ``keras.Input``.

    Example:
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="d")])
        >>> [op.name for op in functional_graph(model).operations][-1]
        'd'
    """
    if is_subclassed(model):
        raise TypeError(
            f"model {model.name!r} has no functional graph (a subclassed model's call, or a "
            "Sequential built without keras.Input): build it as keras.Sequential([keras.Input("
            "shape), ...]) or keras.Model(inputs, outputs)"
        )
    return model._functional if isinstance(model, keras.Sequential) else model


def all_layers(model):
    """Every layer inside ``model``, nested ones included (subclassed models too)."""
    return list(model._flatten_layers(include_self=False, recursive=True))


def _describe(op):
    """``'name' (Type)`` of a graph operation, saying when it is a keras.ops call."""
    kind = type(op).__name__
    if not isinstance(op, keras.layers.Layer):
        kind += ", a keras.ops call between layers"
    return f"{op.name!r} ({kind})"


def graph_issue(model, supported, shared=False):
    """Why the per-layer routes may not run on ``model`` (``None`` if they may).

    Proves that ``model`` has a functional graph, that each operation of it is an instance of
    ``supported`` (so no ``keras.ops`` call and no nested model sits between the layers) and
    that each layer is called exactly once.

    Args:
        model: a Keras model.
        supported: a tuple of layer classes.
        shared: accept layers called more than once (routes that rerun the graph itself).

    Returns:
        ``None``, or a sentence naming the model, layer or operation that fails.

    Example:
        >>> inputs = keras.Input((3,))
        >>> d = keras.layers.Dense(3, name="d")
        >>> model = keras.Model(inputs, d(d(inputs)))  # one layer applied twice
        >>> graph_issue(model, DENSE_STACK_LAYERS)
        "layer 'd' is called 2 times (its weights are shared)"
    """
    if is_subclassed(model):
        return (
            f"model {model.name!r} is subclassed (or has no keras.Input): its call is opaque "
            "to the graph walk"
        )
    graph = functional_graph(model)
    for op in graph.operations:
        if not isinstance(op, supported):
            return f"operation {_describe(op)} is not one of {_names(supported)}"
        calls = len(own_nodes(graph, op))
        if not shared and calls != 1 and not isinstance(op, keras.layers.InputLayer):
            return f"layer {op.name!r} is called {calls} times (its weights are shared)"
    return None


def own_nodes(graph, op):
    """The call nodes of ``op`` that belong to ``graph`` (a layer may serve other models too)."""
    keys = getattr(graph, "_nodes", None)
    nodes = list(getattr(op, "_inbound_nodes", ()))
    if keys is None:
        return nodes
    return [n for i, n in enumerate(nodes) if f"{id(op)}_ib-{i}" in keys]


def _names(types):
    """The class names of ``types``, comma separated."""
    return ", ".join(t.__name__ for t in types)


def dense_stack_issue(model):
    """Why ``model`` is not provably a dense stack (``None`` if it is).

    A dense stack is one chain input -> (``Flatten`` | ``Dense`` | ``Dropout``)* -> logits, each
    layer called once, each taking the previous one's output, in the order of ``model.layers``:
    exactly the network :mod:`hessinit.curvature.kronecker` rebuilds from the layers.

    Args:
        model: a Keras model.

    Returns:
        ``None``, or a sentence naming what fails.

    Example:
        >>> inputs = keras.Input((3,))
        >>> d1, d2 = keras.layers.Dense(4, name="d1"), keras.layers.Dense(2, name="d2")
        >>> model = keras.Model(inputs, d2(2.0 * d1(inputs)))
        >>> dense_stack_issue(model)  # doctest: +ELLIPSIS
        "operation 'multiply...' (Multiply, a keras.ops call between layers) is not one of ..."
        >>> fresh = [keras.layers.Dense(4), keras.layers.Dense(2)]
        >>> dense_stack_issue(keras.Sequential([keras.Input((3,)), *fresh])) is None
        True
    """
    issue = graph_issue(model, DENSE_STACK_LAYERS)
    if issue is not None:
        return issue
    graph = functional_graph(model)
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        n_in, n_out = len(graph.inputs), len(graph.outputs)
        return f"model {model.name!r} has {n_in} inputs and {n_out} outputs"
    previous = graph.inputs[0]
    chain = []
    for op in graph.operations:
        if isinstance(op, keras.layers.InputLayer):
            continue
        node = own_nodes(graph, op)[0]
        args = tf.nest.flatten(node.input_tensors)
        if len(args) != 1 or args[0] is not previous:
            return f"layer {op.name!r} does not take the previous layer's output: not a chain"
        previous = tf.nest.flatten(node.output_tensors)[0]
        chain.append(op)
    if previous is not graph.outputs[0]:
        return f"the output of model {model.name!r} is not the end of its layer chain"
    ordered = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if [id(op) for op in chain] != [id(layer) for layer in ordered]:
        return f"model {model.name!r} calls its layers in another order than model.layers"
    return None


def is_dense_stack(model) -> bool:
    """Whether ``model`` is provably a dense stack (:func:`dense_stack_issue` finds nothing).

    Example:
        >>> is_dense_stack(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))
        True
    """
    return dense_stack_issue(model) is None


def has_batchnorm(model) -> bool:
    """Whether a ``BatchNormalization`` layer sits anywhere in ``model``."""
    return any(isinstance(layer, keras.layers.BatchNormalization) for layer in all_layers(model))


def run_graph(model, x, operation_fn):
    """The output of ``model``'s functional graph on ``x``, each operation run by ``operation_fn``.

    Runs in a ``keras.StatelessScope``: nothing is written to the model's variables (BatchNorm's
    moving statistics stay as they are).
    """
    graph = functional_graph(model)
    with keras.StatelessScope():
        out = graph._run_through_graph(graph._standardize_inputs(x), operation_fn=operation_fn)
    return out[0] if isinstance(out, list | tuple) else out


def call_operation(op, args, kwargs, training=TRAINING):
    """Call graph operation ``op`` in the mode :func:`forward` defines.

    BatchNorm runs on the batch's statistics if ``training``, else on its moving ones; Dropout
    (and any other layer with a ``training`` argument) runs in inference mode.
    """
    if getattr(op, "_call_has_training_arg", False):
        kwargs["training"] = bool(training) and isinstance(op, keras.layers.BatchNormalization)
    return op(*args, **kwargs)


def training_logits(model, x, training=TRAINING):
    """Logits of the network in the mode of :func:`forward`, writing nothing to the model.

    Args:
        model: a Keras model built on a ``keras.Input`` (Sequential or functional).
        x: inputs, shape (B, ...), in the model's dtype.
        training: BatchNorm on the batch's statistics (``True``) or its moving ones.

    Returns:
        The logits z, shape (B, K).

    Example:
        >>> import numpy as np
        >>> inputs = keras.Input((2,))
        >>> bn = keras.layers.BatchNormalization(center=False, scale=False, epsilon=0.0)
        >>> model = keras.Model(inputs, bn(inputs))
        >>> training_logits(model, np.array([[1.0, 0.0], [3.0, 2.0]], "float32")).numpy()
        array([[-1., -1.],
               [ 1.,  1.]], dtype=float32)
        >>> [float(v) for v in bn.moving_mean.numpy()]  # nothing written back
        [0.0, 0.0]
    """
    return run_graph(model, x, lambda op: lambda *a, **kw: call_operation(op, a, kw, training))


def forward(model, x, training=TRAINING):
    """The logits z = model(x) that every curvature quantity of hessinit differentiates.

    ``training=True``: ``BatchNormalization`` normalizes by the batch's own mean and variance
    (so samples are coupled, as in the loss SGD takes gradients of); ``training=False``: by the
    moving statistics. Dropout is off either way, and the moving statistics are never updated.
    Models without BatchNorm give the same logits in both modes.

    Args:
        model: a Keras model mapping inputs to logits.
        x: inputs, shape (B, ...), in the model's dtype.
        training: the BatchNorm mode (default :data:`TRAINING`).

    Returns:
        The logits z, shape (B, K).

    Raises:
        ValueError: ``training`` on a subclassed model with BatchNorm and Dropout (its call
            cannot run one in training mode without the other).
    """
    if not training or not has_batchnorm(model):
        return model(x, training=False)
    if not is_subclassed(model):
        return training_logits(model, x, training=True)
    if any(isinstance(layer, keras.layers.Dropout) for layer in all_layers(model)):
        raise ValueError(
            f"model {model.name!r} is subclassed and has both BatchNormalization and Dropout: "
            "its call cannot put BatchNorm in training mode with dropout off; pass "
            "training=False (moving statistics) or build the model functionally"
        )
    with keras.StatelessScope():
        return model(x, training=True)
