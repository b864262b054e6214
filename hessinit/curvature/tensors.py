"""Hessian norms per weight tensor of any Keras model: convolutions, pooling, BatchNorm, blocks.

For one weight tensor theta of a network (a conv or dense kernel, a bias, a BatchNorm scale),
with P entries, logits z_i(theta) and L = (1/B) sum_i l_i, the Hessian block of theta is

    H = D^2_theta L = G + R,   G = (1/B) sum_i J_i^T Lambda_i J_i,   J_i = dz_i/dtheta,
                               R = (1/B) sum_i sum_k (dl_i/dz_ik) D^2_theta z_ik,

with Lambda_i = diag(p_i) - p_i p_i^T. The forward pass is
:func:`hessinit.curvature.graph.forward`'s: with ``training=True`` (the default)
``BatchNormalization`` normalizes by the statistics of the batch (so the samples are coupled, z_i
depends on every x_j, and BatchNorm contributes to R), with ``training=False`` by its moving
statistics; ``Dropout`` is the identity, and nothing is written back to the model.

Chosen per tensor by :func:`plan_tensor` from the predicted number of products and
their memory:

- ``"columns"`` (exact): H e_p by forward-over-backward products and G e_p = J^T Lambda J e_p / B
  (one JVP and one VJP) for every coordinate p, a batch of coordinates at a time,
  accumulating ||H||_F^2 = sum_p ||H e_p||^2, ||G||_F^2, ||R||_F^2 with R e_p = H e_p - G e_p,
  and <G, R> = sum_p (G e_p) . (R e_p): exact, 2P products.
- ``"columns-linear"`` (exact): when the logits are piecewise linear in theta (every operation
  from theta's layer to the logits is piecewise linear: conv or dense layers with a piecewise
  linear activation, pooling, additions, concatenations, flattening; no BatchNorm downstream,
  theta used once), D^2_theta z_ik = 0 almost everywhere, so R = 0 and H = G: P products of G.
- ``"jacobian"`` (exact): the kernel or bias of a ``Conv2D`` or ``Dense`` layer in which the
  logits are piecewise linear (so R = 0 and H = G; then no BatchNorm downstream couples the
  samples either): ||G||_F from the per-sample Jacobians of
  :mod:`hessinit.curvature.jacobians`, K backward passes and one Gram product instead of P
  products.
- ``"kronecker"`` (exact): the kernel or bias of a linear ``Dense`` layer that gives the logits:
  z_i = W^T x_i + b, so H = G = (1/B) sum_i (x_i x_i^T) kron Lambda_i and R = 0, whose norm
  :func:`hessinit.curvature.kron_norms` takes without forming it (x_i = 1 for the bias).
- ``"hutchpp"`` (estimated, only when asked for): Hutch++-style deflation
  (:func:`hessinit.curvature.hutchinson.deflated_norms`): a k-column sketch gives
  Q = orth([H S, G S]), ||M Q||_F^2 is taken exactly and ||M (I - Q Q^T)||_F^2 from m
  Rademacher probes, for M in {H, G, R}, each with a Student-t interval: k + 2k + m products
  instead of 2P. When that is not fewer than the exact route's P column rows, the exact
  columns run instead (and the result says ``"columns"``).
- ``"hutchinson"`` (estimated): Rademacher probes v on theta alone, ||M||_F^2 = E ||M v||^2 for
  M in {H, G, R} from the same probes (R v = H v - G v), <G, R> = E (G v) . (R v), each norm with
  the Student-t interval of :mod:`hessinit.curvature.hutchinson`; probes are added until each of
  H's and G's 95% intervals is within a stated relative half-width (or a probe budget ends).

The products of ``"columns"``, ``"columns-linear"``, ``"hutchpp"`` and ``"hutchinson"`` run
through :func:`hessinit.curvature.block_products.block_products`, one compiled program for all
of a model's tensors of one shape; :func:`tensors_hessian_norms` also packs the rows of those
tensors into shared calls (:mod:`hessinit.curvature.tensor_requests`).

Imports: numpy, TensorFlow, Keras, :mod:`hessinit.nn` and :mod:`hessinit.curvature` (graph,
block_products, hutchinson, inputs, kronecker).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from ..nn.activations import activation_name, is_piecewise_linear
from ..nn.losses import cross_entropy, softmax_curvature_times
from .block_products import block_products, weight_slices
from .graph import (
    TRAINING,
    call_operation,
    functional_graph,
    graph_issue,
    run_graph,
    training_logits,
)
from .inputs import check_call, resolve_weight
from .jacobians import gauss_newton_norm, sample_jacobians
from .kronecker import HessianNorms, kron_norms
from .tensor_requests import column_requests, deflated_requests, in_lockstep, probe_requests

#: Layer types the per-tensor code accepts (anything else raises ``TypeError``).
SUPPORTED_LAYERS = (
    keras.layers.InputLayer,
    keras.layers.Conv2D,
    keras.layers.Dense,
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.BatchNormalization,
    keras.layers.Add,
    keras.layers.Concatenate,
    keras.layers.Flatten,
    keras.layers.Dropout,
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.ZeroPadding2D,
)

#: Layers through which the logits stay piecewise linear in an upstream weight.
_LINEAR_PASS = (
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.Add,
    keras.layers.Concatenate,
    keras.layers.Flatten,
    keras.layers.Dropout,
    keras.layers.ReLU,
    keras.layers.ZeroPadding2D,
)

#: Piecewise-linear tensors up to this size run the curved tensors' program (one trace).
SMALL_LINEAR = 256

#: Tensors whose exact columns have more rows than this run a program of their own.
OWN_PROGRAM = 256

#: The methods :func:`tensor_hessian_norms` accepts.
METHODS = ("auto", "columns", "hutchinson", "hutchpp")


def _check_supported(model):
    """Raise ``TypeError`` naming the first operation of a type outside :data:`SUPPORTED_LAYERS`.

    A ``keras.ops`` call between layers, a nested model or a subclassed model is refused here
    (the per-tensor routes rerun the graph one known layer at a time);
    :func:`hessinit.curvature.norms.hessian_norms` then falls back to autodiff columns.
    """
    issue = graph_issue(model, SUPPORTED_LAYERS, shared=True)
    if issue is not None:
        raise TypeError(f"the per-tensor curvature routes do not apply: {issue}")


def _activation_is_linear(layer):
    """Whether a layer's own activation (if any) is piecewise linear (a registry entry)."""
    act = getattr(layer, "activation", None)
    return act is None or is_piecewise_linear(activation_name(act))


def _downstream(model, layer):
    """(the operations whose output depends on ``layer``'s, how often ``layer`` is called).

    Found by one eager pass over two zero inputs that marks every tensor computed from the
    layer's output.
    """
    graph = functional_graph(model)
    shape = [2, *graph.inputs[0].shape[1:]]
    x = tf.zeros(shape, graph.inputs[0].dtype)
    marked, keep, after, calls = set(), [], [], [0]

    def operation_fn(op):
        def call(*args, **kwargs):
            out = op(*args, **kwargs)
            keep.append(out)
            inputs = tf.nest.flatten((args, kwargs))
            if op is layer:
                calls[0] += 1
                marked.update(id(t) for t in tf.nest.flatten(out))
            elif any(id(t) in marked for t in inputs):
                after.append(op)
                marked.update(id(t) for t in tf.nest.flatten(out))
            return out

        return call

    run_graph(model, x, operation_fn)
    return after, calls[0]


def _owner(model, variable):
    """The layer of ``model`` that owns ``variable``."""
    for layer in functional_graph(model).operations:
        if any(v is variable for v in layer.trainable_weights):
            return layer
    raise ValueError(f"{variable.path!r} is not a trainable weight of model {model.name!r}")


def logits_linear_in(model, variable) -> bool:
    """Whether the logits are piecewise linear in ``variable``, so that its block has R = 0.

    True when ``variable``'s layer is called once, enters its pre-activation linearly (a conv or
    dense kernel or bias, a BatchNorm scale or shift) followed by a piecewise linear activation,
    and every operation downstream of it is piecewise linear (conv or dense layers with
    piecewise linear activations, pooling, additions, concatenations, flattening, dropout off,
    ReLU). A BatchNorm layer downstream normalizes by batch statistics that depend on the
    weight, so it makes the function non-linear.

    Args:
        model: a Keras model of :data:`SUPPORTED_LAYERS`.
        variable: one of ``model.trainable_weights``.

    Returns:
        ``True`` if D^2 z_ik / D theta^2 = 0 almost everywhere for every logit.

    Example:
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, "tanh"),
        ...                           keras.layers.Dense(2)])
        >>> [logits_linear_in(model, w) for w in model.trainable_weights]
        [False, False, True, True]
    """
    layer = _owner(model, variable)
    after, calls = _downstream(model, layer)
    if calls != 1:
        return False
    if isinstance(layer, keras.layers.BatchNormalization):
        own = True
    else:
        own = isinstance(layer, keras.layers.Conv2D | keras.layers.Dense) and (
            _activation_is_linear(layer)
        )
    return own and all(_passes_linearly(op) for op in after)


def _num_logits(model):
    """K, the number of logits."""
    return int(functional_graph(model).outputs[0].shape[-1])


def _has_patches(layer):
    """Whether the per-sample Jacobian route knows ``layer``: Dense, or Conv2D with groups 1."""
    if isinstance(layer, keras.layers.Dense):
        return True
    return (
        isinstance(layer, keras.layers.Conv2D)
        and layer.groups == 1
        and (layer.data_format == "channels_last")
    )


def _is_logits_dense(model, layer):
    """Whether ``layer`` is a linear ``Dense`` layer whose output is the logits."""
    if not isinstance(layer, keras.layers.Dense) or activation_name(layer.activation) != "linear":
        return False
    after, calls = _downstream(model, layer)
    return calls == 1 and not after


def _layer_input(model, layer, x, training):
    """The input of ``layer`` in the training-mode forward pass with dropout off."""
    seen = []

    def operation_fn(op):
        def call(*args, **kwargs):
            if op is layer:
                seen.append(args[0])
            return call_operation(op, args, kwargs, training)

        return call

    z = run_graph(model, x, operation_fn)
    return seen[0], z


def _kronecker(model, x, variable, training):
    """HessianNorms of a linear logits layer's kernel or bias (``"kronecker"``)."""
    layer = _owner(model, variable)
    h, z = _layer_input(model, layer, x, training)
    p = tf.nn.softmax(tf.cast(z, tf.float64))
    n = int(p.shape[-1])
    lam = softmax_curvature_times(
        p, tf.broadcast_to(tf.eye(n, dtype=tf.float64), [p.shape[0], n, n])
    )
    X = tf.cast(tf.reshape(h, [h.shape[0], -1]), tf.float64)
    if variable is not layer.kernel:
        X = tf.ones([X.shape[0], 1], tf.float64)
    lam = lam.numpy()
    norms = kron_norms(X.numpy(), lam, np.zeros_like(lam))
    return HessianNorms(norms.H, norms.G, 0.0, 0.0, "kronecker")


def _passes_linearly(op):
    """Whether an operation downstream of a weight keeps the logits piecewise linear in it."""
    if isinstance(op, keras.layers.Conv2D | keras.layers.Dense | keras.layers.Activation):
        return _activation_is_linear(op)
    return isinstance(op, _LINEAR_PASS)


@tf.function
def _products(model, x, y, index, V, curvature, training=TRAINING):
    """(H v, G v) for the rows v of V (c, P), each flattened; H v is zeros if not ``curvature``.

    The per-tensor program the norms used before :mod:`hessinit.curvature.block_products`, kept
    for the benchmarks that compare the two: forward-over-backward H v, G v = J^T Lambda (J v)
    / B, the rows in a ``tf.map_fn`` loop; traced per model, tensor (``index``, its position in
    ``model.trainable_weights``) and shapes.
    """
    variable = _tf_variable(model.trainable_weights[index])
    shape = variable.shape

    def one(v):
        v = tf.reshape(v, shape)
        with tf.GradientTape() as tape:
            with tf.autodiff.ForwardAccumulator([variable], [v]) as acc:
                if curvature:
                    with tf.GradientTape() as inner:
                        z = training_logits(model, x, training)
                        loss = tf.reduce_mean(cross_entropy(y, z))
                    grad = inner.gradient(loss, variable)
                else:
                    z = training_logits(model, x, training)
            jv = acc.jvp(z)
            hv = acc.jvp(grad) if curvature else tf.zeros_like(v)
            p = tf.stop_gradient(tf.nn.softmax(z))
            lam_jv = tf.stop_gradient(softmax_curvature_times(p, jv))
            target = tf.reduce_sum(z * lam_jv) / tf.cast(tf.shape(z)[0], z.dtype)
        gv = tape.gradient(target, variable)
        return tf.reshape(hv, [-1]), tf.reshape(gv, [-1])

    rows = int(V.shape[0])
    return tf.map_fn(one, V, fn_output_signature=(V.dtype, V.dtype), parallel_iterations=rows)


@dataclass(frozen=True)
class TensorPlan:
    """How :func:`tensor_hessian_norms` computes one tensor's norms, and what it expects to pay.

    Attributes:
        method: ``"kronecker"``, ``"jacobian"``, ``"columns"``, ``"columns-linear"`` or
            ``"hutchinson"`` (module docstring).
        size: P, the number of entries of the tensor.
        linear: whether the logits are piecewise linear in the tensor (R = 0 exactly).
        products: the number of matrix-vector products the exact method needs (P or 2P).
        chunk: how many products run at once (in flight together), from the memory budget;
            the same for every tensor of a model (tensors of one shape share one trace).
        bytes_per_product: the predicted memory of one product (activations of the batch).
    """

    method: str
    size: int
    linear: bool
    products: int
    chunk: int
    bytes_per_product: int


def _activation_bytes(model, batch):
    """Predicted memory of one product: every layer's output for the batch, three copies."""
    graph = functional_graph(model)
    entries = 0
    for op in graph.operations:
        for node in getattr(op, "_inbound_nodes", []):
            for t in tf.nest.flatten(node.outputs):
                entries += int(np.prod([d for d in t.shape[1:] if d is not None]))
    itemsize = np.dtype(graph.inputs[0].dtype).itemsize
    return 3 * batch * entries * itemsize


def plan_tensor(
    model,
    variable,
    batch,
    max_products=4096,
    memory=2**30,
    method="auto",
    sketch=10,
    probes=20,
    fallback=None,
):
    """Choose how to compute a tensor's H, G, R norms from predicted cost and memory.

    The kernel and bias of a linear logits layer take ``"kronecker"`` (exact, no products),
    those of a conv or dense layer in which the logits are piecewise linear ``"jacobian"``
    (exact, K backward passes) when its B K P float64 Jacobian fits in ``memory``, unless
    ``method`` asks otherwise. The exact column method needs P products (logits
    piecewise linear in the tensor, so R = 0) or 2P; it is chosen when that is at most
    ``max_products``. Products run ``chunk`` at a time,
    ``chunk`` being as many as fit in ``memory`` bytes at the predicted activation memory of one
    product (at least 1, at most 64), the same for every tensor of the model, so that the
    tensors of one shape share one compiled program
    (:func:`~hessinit.curvature.block_products.block_products`).

    Args:
        model: a Keras model of :data:`SUPPORTED_LAYERS`.
        variable: one of ``model.trainable_weights``.
        batch: B, the batch size the norms will be computed on.
        max_products: the largest number of products the exact method may take.
        memory: the memory budget of one vectorized batch of products, in bytes.
        method: one of :data:`METHODS`; ``"auto"`` decides by ``max_products``;
            ``"hutchpp"`` becomes ``"columns"`` when P <= 3 ``sketch`` + ``probes``.
        sketch: ``"hutchpp"``'s sketch columns k.
        probes: ``"hutchpp"``'s residual probes m.
        fallback: ``None`` (``"auto"`` refuses past ``max_products``), ``"hutchinson"`` or
            ``"hutchpp"``: the estimate ``"auto"`` takes past it, asked for explicitly.

    Returns:
        :class:`TensorPlan`.

    Raises:
        ValueError: unknown ``method``, or ``"auto"`` past ``max_products`` without a
            ``fallback``.
        TypeError: a layer outside :data:`SUPPORTED_LAYERS`.

    Example:
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, "relu"),
        ...                           keras.layers.Dense(2)])
        >>> plan = plan_tensor(model, model.trainable_weights[0], batch=8)
        >>> plan.method, plan.size, plan.products  # relu: R = 0, per-sample Jacobians
        ('jacobian', 12, 12)
        >>> plan_tensor(model, model.trainable_weights[0], 8, method="columns").method
        'columns-linear'
        >>> plan_tensor(model, model.trainable_weights[0], 8, memory=100).method  # J too big
        'columns-linear'
        >>> plan_tensor(model, model.trainable_weights[0], 8, 10, memory=100,
        ...             fallback="hutchinson").method  # asked for: an estimate past the budget
        'hutchinson'
        >>> plan_tensor(model, model.trainable_weights[2], 8).method  # the logits layer
        'kronecker'
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if fallback not in (None, "hutchinson", "hutchpp"):
        raise ValueError(f"fallback must be None, 'hutchinson' or 'hutchpp', got {fallback!r}")
    _check_supported(model)
    size = int(np.prod(variable.shape))
    linear = logits_linear_in(model, variable)
    products = size if linear else 2 * size
    per = _activation_bytes(model, batch)
    chunk = int(max(1, min(64, memory // max(per, 1))))  # one for every tensor: one trace
    if method == "auto" and _is_logits_dense(model, _owner(model, variable)):
        method = "kronecker"
    if method == "auto" and linear and _has_patches(_owner(model, variable)):
        jac_bytes = 8 * batch * _num_logits(model) * size
        if jac_bytes <= memory:
            method = "jacobian"
    if method == "auto":
        if products <= max_products:
            method = "columns"
        elif fallback in ("hutchinson", "hutchpp"):
            method = fallback
        else:
            raise ValueError(
                f"the exact route for {variable.path!r} needs {products} products (P = {size}"
                f"{'' if linear else ', H and G columns'}), more than max_products="
                f"{max_products}: method='auto' stays exact, so pass method='hutchpp' (a deflated "
                "estimate with 95% intervals) or method='hutchinson', raise max_products, or "
                "pass fallback='hutchpp' / 'hutchinson' to let 'auto' estimate past the budget"
            )
    if method == "hutchpp" and size <= 3 * sketch + probes:
        method = "columns"  # the exact columns take no more products than the estimate
    if method == "columns" and linear:
        method = "columns-linear"
    return TensorPlan(method, size, linear, products, chunk, per)


def _tf_variable(variable):
    """The ``tf.Variable`` behind a Keras variable (forward-mode autodiff needs it)."""
    return getattr(variable, "value", variable)


def _index(model, variable):
    """The position of ``variable`` in ``model.trainable_weights``."""
    for i, v in enumerate(model.trainable_weights):
        if v is variable:
            return i
    raise ValueError(f"{variable.path!r} is not a trainable weight of model {model.name!r}")


def _program(model, variable, plan, shared=True):
    """(group, hessian): the shared program that serves ``variable``'s rows.

    The group is the model's tensors of ``variable``'s shape, whose one compiled program
    (:func:`~hessinit.curvature.block_products.block_products`) serves all of them and whose
    rows share its calls (:func:`tensors_hessian_norms`). H v is G v
    where the logits are piecewise linear (R = 0); such a tensor of at most
    :data:`SMALL_LINEAR` entries still runs the curved program (H and G; its H rows are
    dropped), so that its shape needs one trace, not two; a larger one runs the program of G
    alone, whose rows cost about half. The exact columns of a tensor of more than
    :data:`OWN_PROGRAM` entries run a program of that tensor alone: a row of the shared program
    pays for the zero tangents of the other tensors of the shape (on ``block1_conv1`` of
    :func:`hessinit.nn.small_resnet`, B = 1,024, measured 1.2 times the own program's), which
    over 512 or more rows outweighs one trace.
    """
    index = _index(model, variable)
    group = [j for j, w in enumerate(model.trainable_weights) if w.shape == variable.shape]
    if not shared or (plan.method in ("columns", "columns-linear") and plan.size > OWN_PROGRAM):
        group = [index]  # its own trace, amortized over its many rows, and no zero tangents
    return tuple(group), not plan.linear or plan.size <= SMALL_LINEAR


def _group_rows(model, x, y, program, asks, rows, training, vectorized):
    """Answer several tensors' requests through one program: [(H V^T)^T, (G V^T)^T] per ask.

    ``asks`` is a list of (variable, linear, V) with V (n, P_t) supported on that tensor; all
    the rows go through ``program`` (:func:`_program`) ``rows`` at a time (the last call padded
    with zero rows), rows of different tensors in one call.
    """
    group, hessian = program
    slices = weight_slices(model, group)
    offsets = np.cumsum([0] + [len(V) for _, _, V in asks])
    full = np.zeros((offsets[-1] + -offsets[-1] % rows, slices[-1].stop))  # whole calls
    parts = []
    for (variable, linear, V), start in zip(asks, offsets, strict=False):
        r, w = slice(start, start + len(V)), slices[group.index(_index(model, variable))]
        full[r, w] = V
        parts.append((r, w, linear))
    dtype, out = _tf_variable(asks[0][0]).dtype, []
    for start in range(0, len(full), rows):
        V = tf.constant(full[start : start + rows], dtype)
        out.append(block_products(model, x, y, V, weights=group, training=training,
                                  hessian=hessian, vectorized=vectorized))  # fmt: skip
    out_h, out_g = (np.concatenate([t[i].numpy() for t in out]).astype(np.float64) for i in (0, 1))
    return [(out_g[r, w] if lin else out_h[r, w], out_g[r, w]) for r, w, lin in parts]


def tensor_hessian_norms(
    model,
    variable,
    x,
    y,
    *,
    method="auto",
    training=TRAINING,
    rel_width=0.05,
    probes=None,
    max_probes=400,
    level=0.95,
    seed=0,
    max_products=4096,
    memory=2**30,
    sketch=10,
    fallback=None,
):
    """||H||_F, ||G||_F, ||R||_F and <G, R> of the loss Hessian restricted to one weight tensor.

    Deprecated as a public name (kept one release): :func:`hessinit.curvature.hessian_norms`
    takes any model and layer, proves the route and falls back to autodiff; this function is
    its per-tensor route for graphs of :data:`SUPPORTED_LAYERS`.

    H = D^2_theta L of the mean cross-entropy of the logits of
    :func:`hessinit.curvature.graph.forward` (``training=True``, the default: BatchNorm on the
    batch's statistics; ``False``: on its moving statistics; dropout off in both), split
    H = G + R as in the module docstring. Exact
    (``"columns"`` or, when the logits are piecewise linear in theta, ``"columns-linear"`` with
    R = 0) or estimated (``"hutchpp"`` or ``"hutchinson"``, with 95% intervals, only when asked
    for by ``method`` or ``fallback``), as :func:`plan_tensor` decides; ``HessianNorms.method``
    says which, and ``intervals`` is ``None`` exactly when the result is exact.
    Computed in the model's dtype, norms accumulated in float64: build the model with
    ``dtype="float64"`` for tiny Hessians (float32 flushes denormals).

    Args:
        model: a Keras model of :data:`SUPPORTED_LAYERS`, built on a ``keras.Input``.
        variable: one of ``model.trainable_weights``, such as ``model.get_layer("conv1").kernel``
            (or a layer name or layer: its kernel, see
            :func:`hessinit.curvature.inputs.resolve_weight`).
        x: inputs, shape (B, ...).
        y: integer labels, shape (B,).
        method: one of :data:`METHODS` (keyword only, as all options).
        training: the BatchNorm mode.
        rel_width: Hutchinson: add probes until the intervals of ||H|| and ||G|| have a half
            width of at most ``rel_width`` times the estimate.
        probes: Hutchinson: a fixed number of probes instead (at least 2); ``"hutchpp"``: its
            residual probes m (default 20).
        max_probes: Hutchinson: the most probes the adaptive rule may take.
        level: Hutchinson: the intervals' confidence level.
        seed: Hutchinson: the seed of the probes.
        max_products: as in :func:`plan_tensor`.
        memory: as in :func:`plan_tensor`.
        sketch: ``"hutchpp"``: the sketch columns k (default 10).
        fallback: as in :func:`plan_tensor`: the estimate ``"auto"`` may take past
            ``max_products`` (``None``: it raises instead).

    Returns:
        :class:`~hessinit.curvature.HessianNorms` with ``method`` set; for ``"hutchinson"`` and
        ``"hutchpp"`` its
        ``intervals`` hold a :class:`~hessinit.curvature.NormEstimate` per ``"H"``, ``"G"``,
        ``"R"``.

    Raises:
        ValueError: unknown ``method``, ``probes < 2``, or a variable not of the model.
        TypeError: a layer outside :data:`SUPPORTED_LAYERS`.

    Example:
        >>> model = keras.Sequential([keras.Input((3,), dtype="float64"),
        ...                           keras.layers.Dense(2, "tanh", dtype="float64"),
        ...                           keras.layers.Dense(2, dtype="float64")])
        >>> x, y = np.random.default_rng(0).random((5, 3)), [0, 1, 0, 1, 1]
        >>> n = tensor_hessian_norms(model, model.layers[0].kernel, x, y)
        >>> n.method, bool(n.R > 0), bool(np.isclose(n.H**2, n.G**2 + 2 * n.GR + n.R**2))
        ('columns', True, True)
    """
    return tensors_hessian_norms(
        model, [variable], x, y, method=method, training=training, rel_width=rel_width,
        probes=probes, max_probes=max_probes, level=level, seed=seed, max_products=max_products,
        memory=memory, sketch=sketch, fallback=fallback,
    )[0]  # fmt: skip


#: The options of :func:`tensor_hessian_norms` (and :func:`tensors_hessian_norms`) and their
#: defaults: its keyword-only parameters.
_OPTIONS = {
    name: p.default
    for name, p in inspect.signature(tensor_hessian_norms).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY
}


def tensors_hessian_norms(
    model, variables, x, y, *, rows=None, vectorized=False, shared=True, **options
):
    """:func:`tensor_hessian_norms` of several tensors at once, their products sharing calls.

    Each tensor is planned and computed as by :func:`tensor_hessian_norms` (the same draws
    for the same ``seed``), but the products of the tensors that share a compiled program run
    together (:func:`hessinit.curvature.tensor_requests.in_lockstep`): each round of requests
    (a deflated estimate's sketch, then its Q and probes; a block of exact columns) goes in
    calls of ``rows`` products, rows of different tensors in one call, padded only at the end.

    Args:
        model: as in :func:`tensor_hessian_norms`.
        variables: weights of ``model`` (or layer names or layers, as there).
        x: inputs, shape (B, ...).
        y: integer labels, shape (B,).
        rows: products per call (the trace's row count); ``None``: the plan's memory-bound
            ``chunk``, as :func:`tensor_hessian_norms`.
        vectorized: run each call's rows in one ``tf.vectorized_map`` (the primal passes
            shared by the rows) instead of a ``tf.map_fn`` loop: faster per row where many small
            operations dominate (a BatchNorm ResNet), slower to trace.
        shared: the tensors of one shape share one program (one trace); ``False``: each
            tensor runs its own, whose rows skip the zero tangents of the others and the
            backward pass below its own layer (on the BatchNorm ResNet's last 3x3 kernel at
            B = 128, 7 against 34 ms a row), at one trace per tensor.
        **options: the options of :func:`tensor_hessian_norms`.

    Returns:
        One :class:`~hessinit.curvature.HessianNorms` per variable, in order.

    Raises:
        ValueError, TypeError: as :func:`tensor_hessian_norms`.

    Example:
        >>> L = [keras.layers.Dense(3, "tanh", dtype="float64", name=n) for n in "ab"]
        >>> model = keras.Sequential([keras.Input((3,), dtype="float64"), *L])
        >>> x, y = np.random.default_rng(0).random((5, 3)), [0, 1, 0, 1, 1]
        >>> both = tensors_hessian_norms(model, ["a", "b"], x, y)
        >>> alone = tensor_hessian_norms(model, "b", x, y)
        >>> [n.method for n in both], bool(np.isclose(both[1].H, alone.H, rtol=1e-12))
        (['columns', 'columns'], True)
    """
    unknown = set(options) - set(_OPTIONS)
    if unknown:
        raise TypeError(f"unknown options {sorted(unknown)}; the options are {list(_OPTIONS)}")
    o = {**_OPTIONS, **options}
    if o["probes"] is not None and o["probes"] < 2:
        raise ValueError("need at least 2 probes for a confidence interval")
    x, y = check_call(model, x, y)
    training, level, seed, sketch = bool(o["training"]), o["level"], o["seed"], o["sketch"]
    probes = 20 if o["probes"] is None else int(o["probes"])  # hutchpp's residual probes
    out, jobs, keys, jacobians = [None] * len(variables), {}, {}, {}
    for k, variable in enumerate(variables):
        variable = resolve_weight(model, variable)
        plan = plan_tensor(model, variable, int(x.shape[0]), o["max_products"], o["memory"],
                           o["method"], sketch, probes, o["fallback"])  # fmt: skip
        if plan.method == "kronecker":
            out[k] = _kronecker(model, x, variable, training)
        elif plan.method == "jacobian":  # after the loop: one pass for all of them
            jacobians[k] = variable
        elif plan.method == "hutchpp":
            jobs[k] = (variable, plan, deflated_requests(plan.size, sketch, probes, level, seed))
        elif plan.method == "hutchinson":
            jobs[k] = (variable, plan, probe_requests(plan.size, rows or plan.chunk,
                       o["rel_width"], o["probes"], o["max_probes"], level, seed))  # fmt: skip
        else:
            jobs[k] = (variable, plan, column_requests(plan.size, rows or plan.chunk, plan.method))
        if k in jobs:
            keys[k], chunk = _program(model, variable, plan, shared), rows or plan.chunk

    batches, used = [[]], 0  # one forward and K backward passes per batch of J that fits
    for k, v in jacobians.items():
        need = 8 * int(x.shape[0]) * _num_logits(model) * int(np.prod(v.shape))  # J's bytes
        if batches[-1] and used + need > o["memory"]:
            batches, used = [*batches, []], 0
        batches[-1].append(k)
        used += need
    for batch in filter(None, batches):
        z, Js = sample_jacobians(model, [jacobians[k] for k in batch], x, training)
        for k, J in zip(batch, Js, strict=True):
            g = gauss_newton_norm(z, J)
            out[k] = HessianNorms(g, g, 0.0, 0.0, "jacobian")

    def answer(program, asks):  # the requests of the tensors of one program, in one go
        order = list(jobs)
        asks = [(jobs[order[i]][0], jobs[order[i]][1].linear, V) for i, V in asks]
        return _group_rows(model, x, y, program, asks, chunk, training, vectorized)

    done = in_lockstep([r for _, _, r in jobs.values()], list(keys.values()), answer)
    for k, norms in zip(jobs, done, strict=True):
        out[k] = norms
    return out


def layer_tensor_norms(model, layer, x, y, weight=None, **options):
    """:func:`tensor_hessian_norms` of one layer's weight, by layer name (or the layer).

    Deprecated alias (kept one release) of :func:`hessinit.curvature.hessian_norms`.

    Args:
        model: as in :func:`tensor_hessian_norms`.
        layer: a layer name such as ``"conv1"`` or the layer itself.
        x: inputs, shape (B, ...).
        y: integer labels, shape (B,).
        weight: the weight's name, such as ``"kernel"``, ``"bias"``, ``"gamma"``; ``None``: the
            layer's kernel, or its first trainable weight (a BatchNorm scale).
        **options: passed to :func:`tensor_hessian_norms`.

    Returns:
        :class:`~hessinit.curvature.HessianNorms`.

    Raises:
        ValueError: no such layer or weight.

    Example:
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
        >>> x, y = np.ones((2, 3)), [0, 1]
        >>> layer_tensor_norms(model, "d", x, y, weight="bias", method="columns").method
        'columns-linear'
    """
    return tensor_hessian_norms(model, resolve_weight(model, layer, weight), x, y, **options)


def all_tensor_norms(model, x, y, **options):
    """:func:`tensor_hessian_norms` of every trainable weight, keyed by layer and weight name.

    Args:
        model: as in :func:`tensor_hessian_norms`.
        x: inputs, shape (B, ...).
        y: integer labels, shape (B,).
        **options: passed to :func:`tensor_hessian_norms`.

    Returns:
        ``{"layer/weight": HessianNorms}`` (such as ``"conv1/kernel"``), layers in the
        model's order.

    Example:
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
        >>> list(all_tensor_norms(model, np.ones((2, 3)), [0, 1]))
        ['d/kernel', 'd/bias']
    """
    return {
        f"{layer.name}/{v.name}": tensor_hessian_norms(model, v, x, y, **options)
        for layer in functional_graph(model).operations
        for v in layer.trainable_weights
    }
