"""Many runs of one convolutional network as one compiled program, run by run or grouped.

Run r of R has its own weights w_r (its seed and initialization), its own step size lr_r and
its own mini-batches. The runs' images enter stacked on the channel axis, run-major:
a map h with C channels per run is held as one tensor (b, H, W, R C) whose channels
r C .. (r + 1) C - 1 are run r's. A convolution of every run is then one grouped convolution
with R groups, the kernels K_r in R^{k x k x c_in x c_out} packed side by side,

    K = [K_1 | K_2 | ... | K_R] in R^{k x k x c_in x R c_out},   (h * K)[..., r] = h[..., r] * K_r,

since group r of a grouped convolution sees only input channels of group r and writes only
output channels of group r (``mode="grouped"``); elementwise activations, max-pooling,
residual additions and global average pooling act on each channel alone, so they need no
change, and at the first dense layer (after ``Flatten`` or ``GlobalAveragePooling2D``) the run
axis moves to the front, (R, b, n), for batched matrix products W in R^{R x n_in x n_out}, as
in :mod:`hessinit.train.stacked`. ``mode="unrolled"`` (the default) instead slices run r's
images and weights and applies the Keras model's operations to them run by run inside the one
traced step, so each run's arithmetic is that of its own Keras model. Either way the loss of
run r,

    L_r = (1/b) sum_{i in B_r} l(z_i[r], y_i),       w_r <- w_r - lr_r grad_{w_r} L_r,

depends on w_r only, so one backward pass of sum_r L_r gives every run's gradient; a run's
numbers do not depend on which runs share its program, and a run that diverges (NaN, inf)
stays in its own slice.

The step is one ``tf.function`` that runs all steps of a call in a ``tf.while_loop``, traced
once per :class:`ConvStack`, number of runs, steps per call and batch size. It is a TensorFlow
graph, not XLA: on CPU, XLA's convolutions were about 20x slower than TensorFlow's oneDNN
kernels (2 busy cores, the small tanh CNN, R = 12, batch 32: 58 ms per run-step with XLA
against 2.4 ms as a graph of the runs unrolled one by one). This network is compute-bound on
CPU (about 60 MFLOP per step at batch 32), so stacking saves the per-call overhead only: in one
process on 2 cores shared with other jobs (load about 12), ms per run-step, unrolled / grouped /
one run of :func:`hessinit.stepsize.sgd_steps`: 6.3 / 12.0 / 11.1 at R = 1, 2.7 / 2.7 / 13.5 at
R = 6, 4.2 / 6.4 / 6.3 at R = 18; the grouped convolution of oneDNN does not beat the
unrolled runs here.

Supported layers (those of :func:`hessinit.nn.small_cnn` and :func:`hessinit.nn.small_resnet`
without BatchNorm): ``InputLayer``, ``Conv2D`` (channels last, ``groups=1``), ``MaxPooling2D``,
``Activation``, ``Add``, ``Flatten``, ``GlobalAveragePooling2D`` and ``Dense``.

Holds :class:`ConvStack` and :func:`fit_runs`.

Imports: numpy, TensorFlow and :mod:`hessinit.nn` (the loss); never
:mod:`hessinit.study` or :mod:`hessinit.book`.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

#: How :class:`ConvStack` lays out the runs in its compiled step (module docstring).
MODES = ("unrolled", "grouped")

#: The Keras layers :class:`ConvStack` can stack.
SUPPORTED = ("InputLayer", "Conv2D", "MaxPooling2D", "Activation", "Add", "Flatten",
             "GlobalAveragePooling2D", "Dense")  # fmt: skip


def _inputs(layer):
    """The Keras tensors a layer of a functional model reads, as a list."""
    got = layer.input
    return list(got) if isinstance(got, (list, tuple)) else [got]


class ConvStack:
    """R runs of one Keras convolutional network, held as packed weights and trained together.

    The packed weights are a list with one tensor per weight of the model, in
    ``model.get_weights()`` order: a convolution's kernel as (k, k, c_in, R c_out) and its bias
    as (R c_out,) (run-major, the module docstring), a dense layer's kernel as (R, n_in,
    n_out) and its bias as (R, n_out).

    Args:
        model: a built Keras model of the supported layers (:data:`SUPPORTED`) mapping images
            (H, W, C) to logits; it is read, never changed.

    Raises:
        ValueError: a layer outside :data:`SUPPORTED`, a grouped or channels-first convolution,
            or a convolution after a dense layer.

    Example:
        Two runs of a tiny CNN; run 1 has run 0's weights doubled:

        >>> from hessinit.nn import small_cnn
        >>> model = small_cnn((6, 6, 1), 3, channels=(2, 2), sd=[0.5, 0.5, 0.5])
        >>> stack = ConvStack(model)
        >>> w = model.get_weights()
        >>> packed = stack.pack([w, [2 * a for a in w]])
        >>> [tuple(t.shape) for t in packed]
        [(3, 3, 1, 4), (4,), (3, 3, 2, 4), (4,), (2, 2, 3), (2, 3)]
        >>> x = np.random.default_rng(0).random((5, 6, 6, 1), np.float32)
        >>> z = stack.logits(packed, np.stack([x, x]))
        >>> bool(np.allclose(z[0], model(x), atol=1e-6))
        True
    """

    def __init__(self, model, mode: str = "unrolled"):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.model, self.mode = model, mode
        self.ops = []  # (kind, layer, input ids, output id)
        self.shapes = [tuple(int(d) for d in w.shape) for w in model.weights]
        dense_seen = False
        for layer in model.layers:
            kind = type(layer).__name__
            if kind not in SUPPORTED:
                raise ValueError(f"layer {layer.name!r} ({kind}) cannot be stacked; "
                                 f"supported: {', '.join(SUPPORTED)}")  # fmt: skip
            if kind == "InputLayer":
                continue
            if kind == "Conv2D":
                if layer.groups != 1 or layer.data_format != "channels_last":
                    raise ValueError(f"layer {layer.name!r}: only channels-last convolutions "
                                     "with groups=1 can be stacked")  # fmt: skip
                if dense_seen:
                    raise ValueError(f"layer {layer.name!r}: a convolution after a dense layer")
            dense_seen = dense_seen or kind in ("Flatten", "GlobalAveragePooling2D", "Dense")
            ids = [id(t) for t in _inputs(layer)]
            self.ops.append((kind, layer, ids, id(layer.output)))
        self.input_id = id(model.inputs[0])
        self.output_id = id(model.outputs[0])
        self._steps = tf.function(self._steps_graph)
        self._losses = tf.function(self._sum_losses)

    # packing --------------------------------------------------------------------------------
    def _kinds(self):
        """For each weight of the model, ``"conv"`` or ``"dense"`` and whether it is a kernel."""
        out = []
        for layer in self.model.layers:
            kind = "conv" if type(layer).__name__ == "Conv2D" else "dense"
            out += [(kind, k == 0) for k in range(len(layer.weights))]
        return out

    def pack(self, runs) -> list:
        """The packed float32 weights of R runs (module docstring).

        Args:
            runs: one list of numpy arrays per run, each in ``model.get_weights()`` order.

        Returns:
            A list of float32 tensors, one per weight of the model.

        Raises:
            ValueError: a run whose weights do not fit the model.

        Example:
            >>> from hessinit.nn import small_cnn
            >>> model = small_cnn((6, 6, 1), 3, channels=(2, 2))
            >>> stack = ConvStack(model)
            >>> runs = [model.get_weights()] * 3
            >>> back = stack.unpack(stack.pack(runs))
            >>> all(np.array_equal(a, b) for a, b in zip(back[2], runs[2]))
            True
        """
        runs = [list(r) for r in runs]
        for r in runs:
            if [tuple(np.shape(a)) for a in r] != self.shapes:
                raise ValueError(f"a run's weights have shapes {[np.shape(a) for a in r]}, "
                                 f"the model's {self.shapes}")  # fmt: skip
        packed = []
        for j, (kind, kernel) in enumerate(self._kinds()):
            s = np.stack([np.asarray(r[j], np.float32) for r in runs])  # (R, ...)
            if kind == "conv" and kernel:  # (R, k, k, ci, co) -> (k, k, ci, R co)
                k1, k2, ci, co = s.shape[1:]
                s = s.transpose(1, 2, 3, 0, 4).reshape(k1, k2, ci, len(runs) * co)
            elif kind == "conv":
                s = s.reshape(-1)
            packed.append(tf.constant(s))
        return packed

    def unpack(self, packed) -> list:
        """Each run's weights, numpy arrays in ``model.get_weights()`` order (inverse of pack).

        Args:
            packed: packed weights of R runs.

        Returns:
            One list of arrays per run.
        """
        per_weight = []
        runs = None
        for t, (kind, kernel), shape in zip(packed, self._kinds(), self.shapes, strict=True):
            a = np.asarray(t)
            if kind == "conv" and kernel:
                k1, k2, ci, co = shape
                a = a.reshape(k1, k2, ci, -1, co).transpose(3, 0, 1, 2, 4)
            elif kind == "conv":
                a = a.reshape(-1, shape[0])
            runs = len(a)
            per_weight.append(a)
        return [[w[r] for w in per_weight] for r in range(runs)]

    # the network ----------------------------------------------------------------------------
    def _views(self, packed, r, runs):
        """Run r's weights as slices of the packed ones, in ``model.get_weights()`` order."""
        out = []
        for t, (kind, kernel) in zip(packed, self._kinds(), strict=True):
            if kind == "conv":
                width = int(t.shape[-1]) // runs
                out.append(t[..., r * width : (r + 1) * width] if kernel
                           else t[r * width : (r + 1) * width])  # fmt: skip
            else:
                out.append(t[r])
        return out

    def _forward_one(self, weights, x):
        """Logits (b, K) of one run's weights on its images x (b, H, W, C): the Keras model."""
        values = {self.input_id: x}
        at = 0
        for kind, layer, ids, out in self.ops:
            h = [values[i] for i in ids]
            if kind in ("Conv2D", "Dense"):
                if kind == "Conv2D":
                    h = tf.nn.conv2d(h[0], weights[at], list(layer.strides),
                                     layer.padding.upper(),
                                     dilations=list(layer.dilation_rate))  # fmt: skip
                else:
                    h = tf.matmul(h[0], weights[at])
                if layer.use_bias:
                    h = h + weights[at + 1]
                h = layer.activation(h)
                at += len(layer.weights)
            elif kind == "MaxPooling2D":
                h = tf.nn.max_pool2d(h[0], list(layer.pool_size), list(layer.strides),
                                     layer.padding.upper())  # fmt: skip
            elif kind == "Activation":
                h = layer.activation(h[0])
            elif kind == "Add":
                h = tf.add_n(h)
            elif kind == "GlobalAveragePooling2D":
                h = tf.reduce_mean(h[0], axis=[1, 2])
            else:  # Flatten
                h = tf.reshape(h[0], [tf.shape(h[0])[0], -1])
            values[out] = h
        return values[self.output_id]

    def _forward(self, packed, x, runs):
        """Logits (R, b, K) of packed weights on packed images x (b, H, W, R C)."""
        if self.mode == "unrolled":
            c = int(x.shape[-1]) // runs
            return tf.stack([self._forward_one(self._views(packed, r, runs),
                                               x[..., r * c : (r + 1) * c])
                             for r in range(runs)])  # fmt: skip
        values = {self.input_id: x}
        at = 0
        for kind, layer, ids, out in self.ops:
            h = [values[i] for i in ids]
            if kind == "Conv2D":
                kern = packed[at]
                h = tf.nn.conv2d(h[0], kern, list(layer.strides), layer.padding.upper(),
                                 dilations=list(layer.dilation_rate))  # fmt: skip
                if layer.use_bias:
                    h = h + packed[at + 1]
                h = layer.activation(h)
                at += len(layer.weights)
            elif kind == "MaxPooling2D":
                h = tf.nn.max_pool2d(h[0], list(layer.pool_size), list(layer.strides),
                                     layer.padding.upper())  # fmt: skip
            elif kind == "Activation":
                h = layer.activation(h[0])
            elif kind == "Add":
                h = tf.add_n(h)
            elif kind == "GlobalAveragePooling2D":
                m = tf.reduce_mean(h[0], axis=[1, 2])  # (b, R C)
                h = tf.transpose(tf.reshape(m, [tf.shape(m)[0], runs, -1]), [1, 0, 2])
            elif kind == "Flatten":
                v = h[0]
                b, hh, ww = tf.shape(v)[0], v.shape[1], v.shape[2]
                v = tf.reshape(v, [b, hh, ww, runs, -1])
                h = tf.reshape(tf.transpose(v, [3, 0, 1, 2, 4]), [runs, b, -1])
            else:  # Dense, on (R, b, n)
                h = tf.matmul(h[0], packed[at])
                if layer.use_bias:
                    h = h + packed[at + 1][:, None, :]
                h = layer.activation(h)
                at += len(layer.weights)
            values[out] = h
        return values[self.output_id]

    @staticmethod
    def _pack_images(x):
        """Images (R, b, H, W, C) as one tensor (b, H, W, R C), run-major channels."""
        x = tf.convert_to_tensor(x, tf.float32)
        s = tf.shape(x)
        x = tf.transpose(x, [1, 2, 3, 0, 4])
        return tf.reshape(x, [s[1], s[2], s[3], s[0] * s[4]])

    def logits(self, packed, x) -> np.ndarray:
        """The logits of every run on its own images.

        Args:
            packed: packed weights of R runs.
            x: images (R, b, H, W, C), float32.

        Returns:
            A numpy array (R, b, K).
        """
        return self._forward(packed, self._pack_images(x), len(x)).numpy()

    def _run_losses(self, packed, x, y, runs):
        """Per-sample losses (R, b) of every run on packed images x and labels y (R, b)."""
        z = self._forward(packed, x, runs)
        true = tf.gather(z, y, axis=-1, batch_dims=2)
        return tf.reduce_logsumexp(z, axis=-1) - true

    def _steps_graph(self, packed, x_all, y_all, idx, lr, runs):
        """SGD steps of all runs over idx (T, R, b); the weights and losses (T, R)."""
        scales = []
        for t, (kind, _) in zip(packed, self._kinds(), strict=True):
            if kind == "conv":  # last axis R c_out
                scales.append(tf.repeat(lr, int(t.shape[-1]) // runs))
            else:
                scales.append(tf.reshape(lr, [-1] + [1] * (t.shape.rank - 1)))
        steps = tf.shape(idx)[0]

        def body(s, flat, losses):
            xb = self._pack_images(tf.gather(x_all, idx[s]))  # (R, b, ...) -> packed
            yb = tf.gather(y_all, idx[s])
            with tf.GradientTape() as tape:
                tape.watch(flat)
                loss = tf.reduce_mean(self._run_losses(flat, xb, yb, runs), axis=1)  # (R,)
                total = tf.reduce_sum(loss)
            grads = tape.gradient(total, flat)
            flat = [v - c * g for v, c, g in zip(flat, scales, grads, strict=True)]
            return s + 1, flat, losses.write(s, loss)

        losses = tf.TensorArray(tf.float32, size=steps)
        _, packed, losses = tf.while_loop(lambda s, *_: s < steps, body,
                                          (tf.constant(0), list(packed), losses))  # fmt: skip
        return packed, losses.stack()

    def sgd_steps(self, packed, x, y, idx, lr):
        """SGD steps w_r <- w_r - lr_r grad L_r of every run, in float32, one compiled call.

        Step t of run r takes the mini-batch ``x[idx[t, r]]``, ``y[idx[t, r]]``: the same
        update as :func:`hessinit.stepsize.sgd_steps` on the run's Keras model.

        Args:
            packed: packed weights of R runs.
            x: all images (N, H, W, C), float32.
            y: all labels (N,).
            idx: the rows of every step's mini-batch, an integer array (T, R, b).
            lr: the step size of each run, (R,).

        Returns:
            ``(packed, losses)``: the weights after the T steps and each step's mini-batch loss
            before its update, a float32 numpy array (T, R) (non-finite once a run diverged).

        Example:
            >>> from hessinit.nn import small_cnn
            >>> model = small_cnn((6, 6, 1), 3, channels=(2, 2), sd=[0.5, 0.5, 0.5])
            >>> stack = ConvStack(model)
            >>> x = np.random.default_rng(0).random((8, 6, 6, 1), np.float32)
            >>> y = np.arange(8) % 3
            >>> idx = np.zeros((4, 2, 8), int) + np.arange(8)
            >>> _, losses = stack.sgd_steps(stack.pack([model.get_weights()] * 2), x, y, idx,
            ...                             [0.1, 0.5])
            >>> bool(losses[0, 0] == losses[0, 1] and losses[-1, 1] < losses[-1, 0])
            True
        """
        idx = np.asarray(idx, np.int32)
        if idx.ndim != 3 or idx.shape[1] != int(packed[-1].shape[0]):
            raise ValueError(f"idx must be (T, R, b) with R = {int(packed[-1].shape[0])}, "
                             f"got {idx.shape}")  # fmt: skip
        if idx.shape[0] == 0:
            return list(packed), np.zeros((0, idx.shape[1]), np.float32)
        x = tf.convert_to_tensor(np.asarray(x, np.float32))
        y = tf.convert_to_tensor(np.asarray(y, np.int32))
        lr = tf.constant(np.asarray(lr, np.float32))
        packed, losses = self._steps(list(packed), x, y, tf.constant(idx), lr, idx.shape[1])
        return packed, losses.numpy()

    def _sum_losses(self, packed, x, y, runs):
        """Per-run sums of the losses (R,) on the same images x (b, H, W, C) for every run."""
        xs = tf.tile(x, [1, 1, 1, runs])  # run-major: channel blocks of C, one per run
        ys = tf.tile(y[None], [runs, 1])
        return tf.reduce_sum(tf.cast(self._run_losses(packed, xs, ys, runs), tf.float64), axis=1)

    def mean_losses(self, packed, x, y, chunk: int = 100) -> np.ndarray:
        """Each run's mean cross-entropy on the same images (e.g. a held-out set).

        The same as :func:`hessinit.nn.mean_loss` of each run's Keras model, taken ``chunk``
        images at a time (the sums in float64).

        Args:
            packed: packed weights of R runs.
            x: images (N, H, W, C).
            y: labels (N,).
            chunk: images per compiled call.

        Returns:
            A float64 numpy array (R,) (NaN or inf for a diverged run).
        """
        x, y = np.asarray(x, np.float32), np.asarray(y, np.int32)
        total = 0.0
        for lo in range(0, len(y), chunk):
            xb, yb = tf.constant(x[lo : lo + chunk]), tf.constant(y[lo : lo + chunk])
            part = self._losses(packed, xb, yb, int(packed[-1].shape[0]))
            total = total + part.numpy()
        return np.asarray(total, np.float64) / len(y)


def fit_runs(
    model,
    weights,
    lrs,
    batches,
    x,
    y,
    x_test,
    y_test,
    *,
    max_runs: int = 24,
    mode: str = "unrolled",
):
    """Train R runs of one network by SGD as compiled programs; their held-out losses.

    Run r starts from ``weights[r]``, takes ``lrs[r]`` and the mini-batches ``batches[r]``
    (rows of ``x``, ``y``), exactly as :func:`hessinit.stepsize.sgd_steps` on a Keras model
    holding the run's weights; the runs go through :class:`ConvStack` in groups of at most
    ``max_runs`` (one compiled program per group size).

    Args:
        model: the network (a built Keras model of :data:`SUPPORTED` layers).
        weights: each run's initial weights (``model.get_weights()`` order).
        lrs: each run's step size.
        batches: each run's mini-batches, an integer array (R, T, b).
        x: training images (N, H, W, C).
        y: training labels (N,).
        x_test: held-out images.
        y_test: held-out labels.
        max_runs: the most runs in one program.
        mode: the layout of :class:`ConvStack` (:data:`MODES`).

    Returns:
        A dict of numpy arrays over the runs: ``before`` and ``after`` (mean held-out
        cross-entropy before and after training), ``losses`` (R, T) (each step's mini-batch
        loss) and ``diverged_at`` (the first step with a non-finite mini-batch loss, -1 if
        none).

    Raises:
        ValueError: lengths that do not match.

    Example:
        >>> from hessinit.nn import small_cnn
        >>> model = small_cnn((6, 6, 1), 3, channels=(2, 2), sd=[0.5, 0.5, 0.5])
        >>> x = np.random.default_rng(0).random((8, 6, 6, 1), np.float32)
        >>> y = np.arange(8) % 3
        >>> out = fit_runs(model, [model.get_weights()] * 2, [0.1, 1e30],
        ...                np.zeros((2, 3, 8), int) + np.arange(8), x, y, x, y)
        >>> bool(out["after"][0] < out["before"][0]), out["diverged_at"].tolist()
        (True, [-1, 1])
    """
    batches = np.asarray(batches)
    runs = len(weights)
    if len(lrs) != runs or len(batches) != runs:
        raise ValueError(f"weights, lrs and batches need one entry per run: {runs}, "
                         f"{len(lrs)}, {len(batches)}")  # fmt: skip
    stack = ConvStack(model, mode)
    out = {"before": np.empty(runs), "after": np.empty(runs),
           "losses": np.empty(batches.shape[:2], np.float32)}  # fmt: skip
    groups = max(1, math.ceil(runs / max_runs))
    size = math.ceil(runs / groups)
    for lo in range(0, runs, size):
        sel = slice(lo, lo + size)
        packed = stack.pack(weights[sel])
        out["before"][sel] = stack.mean_losses(packed, x_test, y_test)
        idx = np.transpose(batches[sel], (1, 0, 2))
        packed, losses = stack.sgd_steps(packed, x, y, idx, np.asarray(lrs, float)[sel])
        out["losses"][sel] = losses.T
        out["after"][sel] = stack.mean_losses(packed, x_test, y_test)
    bad = ~np.isfinite(out["losses"])
    out["diverged_at"] = np.where(bad.any(axis=1), bad.argmax(axis=1), -1)
    return out


__all__ = ["MODES", "SUPPORTED", "ConvStack", "fit_runs"]
