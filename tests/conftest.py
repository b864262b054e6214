"""Shared test data: a random dataset record, an empty Keras cache root and the small book."""

import argparse
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hessinit.book import cli as book_cli
from hessinit.book import grid as book_grid
from hessinit.book import runner as book_runner
from hessinit.data import Dataset

# No test ever downloads a dataset: a missing file is an error (hessinit.data.downloads_allowed).
# Set here, at collection, so that notebooks and commands the tests start inherit it too.
os.environ["HESSINIT_OFFLINE"] = "1"


def random_images(n, shape, num_classes, seed):
    """A small dataset record of uniform random images in [0, 1) and random labels."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, *shape)).astype(np.float32)
    y = rng.integers(0, num_classes, n).astype(np.int32)
    return Dataset(x, y, "tiny", num_classes, tuple(shape), "random")


def default_sigint():
    """Give a child process the default Ctrl-C (for ``subprocess.Popen(preexec_fn=...)``).

    A shell starts background jobs with SIGINT ignored, and children inherit that; CI may run
    the suite so. A test that sends a child SIGINT must undo it, or Python in the child never
    raises KeyboardInterrupt and the test waits for nothing.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def keras_cache(tmp_path, monkeypatch):
    """A fresh Keras cache root (not yet created), set via KERAS_HOME for this test only.

    hessinit.data reads KERAS_HOME at call time. Import keras before using this fixture (its
    import writes keras.json into the cache root it finds).
    """
    root = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(root))
    return root


# --- The small book: every notebook of the book executed once at --small size and the site
# built, once per session, shared by the slow tests that read it: the runner's
# (book/test_runner.py), the browser's (book/test_browser.py), the prose check
# (book/test_site_prose.py), the Colab-like test (book/test_colab.py: its ledger and results
# archive) and the Dask test (book/test_dask.py: its tables). Only tests marked slow may use it:
# `pytest -m "not slow"` executes no notebook of the book. No test changes the copy. It lives
# here, not in tests/book/conftest.py, because the test modules import this file by name
# (``from conftest import random_images``) and a second conftest would shadow it.

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def small_book(tmp_path_factory):
    """``(root, exit code)`` of the small book built in a temporary copy."""
    root = tmp_path_factory.mktemp("book")
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, root)
    shutil.copytree(ROOT / "book", root / "book")
    shutil.copytree(ROOT / "benchmarks" / "results", root / "benchmarks" / "results")
    parser = argparse.ArgumentParser()
    book_cli.add_arguments(parser)
    # Others may edit hessinit/**/*.py while the tests run: pin the code hash the runner reads.
    with pytest.MonkeyPatch.context() as mp:
        pinned = book_grid.package_hash()
        mp.setattr(book_runner, "package_hash", lambda: pinned)
        code = book_cli.main(parser.parse_args(["--root", str(root), "--small"]))
        yield root, code


#: Doctests that train networks or start a Jupyter kernel: seconds each, TensorFlow tracing and
#: XLA compiling tiny programs, not arithmetic. Marked slow (still run by the full suite and CI);
#: each function is also checked by a quick test in tests/, named beside it.
SLOW_DOCTESTS = {
    "hessinit.book.execute.execute_job": "a kernel; book/test_runner.py (slow too: kernels)",
    "hessinit.chapters.chain_rule.block_norms": "chapters/test_chain_rule.py",
    "hessinit.chapters.chain_rule.chain_rule_check": "chapters/test_chain_rule.py",
    "hessinit.chapters.chain_rule.kron_pattern": "chapters/test_chain_rule.py",
    "hessinit.chapters.cnn.kernel_norms": "chapters/test_cnn.py",
    "hessinit.chapters.cnn.lambda_max": "chapters/test_cnn.py",
    "hessinit.chapters.cnn_depth.stable_roots": "chapters/test_cnn.py",
    "hessinit.chapters.cnn_training.init_measures": "chapters/test_cnn_training.py",
    "hessinit.chapters.cnn_training.track": "chapters/test_cnn_training.py",
    "hessinit.chapters.dominance.along_training": "chapters/test_dominance.py",
    "hessinit.chapters.dominance_network.relu_exactness": "chapters/test_dominance.py",
    "hessinit.chapters.dominance_network.whole_network": "chapters/test_dominance.py",
    "hessinit.chapters.dominance_network.whole_network_grid": "study/test_sweep.py",
    "hessinit.chapters.init_schemes.tuned_fits": "chapters/test_init_schemes.py",
    "hessinit.chapters.dominance.training_seeds": "along_training: chapters/test_dominance.py",
    "hessinit.chapters.init_schemes.fit_schemes": "study/test_sweep.py",
    "hessinit.chapters.followups.batch_size_norms": "chapters/test_followups.py",
    "hessinit.chapters.followups.train_checkpoints": "chapters/test_followups.py",
    "hessinit.chapters.cnn_training.sgd_outcomes": "chapters/test_cnn_training.py",
    "hessinit.chapters.step_stability.init_spectra": "chapters/test_step_size.py",
    "hessinit.chapters.step_size.schedule_runs": "chapters/test_step_size.py",
    "hessinit.study.experiments.sgd_grid": "chapters/test_step_size.py",
    "hessinit.curvature.spectra.network_spectrum": "curvature/test_spectra.py",
    "hessinit.curvature.tensors.tensor_hessian_norms": "curvature/test_tensors.py",
    "hessinit.curvature.density.hutchinson_trace": "curvature/test_api.py",
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark :data:`SLOW_DOCTESTS` slow; refuse a test that uses the small book without being
    marked slow.

    ``pytest -m "not slow"`` must execute no notebook, and the small book executes them all.
    This hook runs before ``-m`` deselects, so the marks added here count.
    """
    doctests = {item.name for item in items if isinstance(item, pytest.DoctestItem)}
    modules = {name.rsplit(".", 1)[0] for name in doctests}
    stale = [k for k in SLOW_DOCTESTS if k.rsplit(".", 1)[0] in modules and k not in doctests]
    if stale:  # a function moved or was renamed: its doctest would run in the quick suite
        raise pytest.UsageError(f"SLOW_DOCTESTS names doctests that were not collected: {stale}")
    for item in items:
        if isinstance(item, pytest.DoctestItem) and item.name in SLOW_DOCTESTS:
            item.add_marker(pytest.mark.slow)
        if "small_book" in getattr(item, "fixturenames", ()):
            # pytest-xdist (--dist loadgroup): every reader of the small book on one worker,
            # so that the session builds it once.
            item.add_marker(pytest.mark.xdist_group("small_book"))
    if not config.pluginmanager.has_plugin("hessinit-kernel-guard"):
        config.pluginmanager.register(KernelGuard(), "hessinit-kernel-guard")
    quick = [
        item.nodeid
        for item in items
        if "small_book" in getattr(item, "fixturenames", ())
        and item.get_closest_marker("slow") is None
    ]
    if quick:
        raise pytest.UsageError(
            "these tests use the small_book fixture (every notebook executed) but are not "
            f"marked @pytest.mark.slow: {', '.join(quick)}"
        )


class KernelGuard:
    """Fail a test not marked slow that starts a Jupyter kernel in this process (executes a
    notebook, even a tiny one): the quick suite executes no notebook.

    It counts the launches of jupyter_client's local provisioner, the one nbclient and papermill
    use; a kernel started by a child process (``python -m papermill``, a Dask worker) is not
    seen here, so such tests are marked slow by hand.
    """

    def __init__(self):
        from jupyter_client.provisioning.local_provisioner import LocalProvisioner

        self.launches = 0
        launch = LocalProvisioner.launch_kernel

        async def counted(provisioner, *args, **kwargs):
            self.launches += 1
            return await launch(provisioner, *args, **kwargs)

        LocalProvisioner.launch_kernel = counted

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item):
        before = self.launches
        result = yield
        if item.get_closest_marker("slow") is None and self.launches > before:
            pytest.fail(
                f"{item.nodeid} started {self.launches - before} Jupyter kernel(s) but is not "
                "marked @pytest.mark.slow: `pytest -m 'not slow'` executes no notebook"
            )
        return result


def equal_to_run(mine, ref, rtol=1e-4):
    """Assert that ``mine`` (a trainer's frame) has ``ref``'s (train.run's) columns and steps,
    its numbers equal to ``rtol`` (NaN where NaN)."""
    assert list(mine.columns[: len(ref.columns)]) == list(ref.columns)
    assert mine["step"].tolist() == ref["step"].tolist()
    for column in ref.columns:
        if not pd.api.types.is_numeric_dtype(ref[column]):
            assert mine[column].tolist() == ref[column].tolist(), column
            continue
        a, b = mine[column].to_numpy(float), ref[column].to_numpy(float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), column
        ok = ~np.isnan(b)
        atol = rtol * 1e-3 * (np.abs(b[ok]).max() if ok.any() else 0.0)
        if column.startswith("realised"):  # a difference of two float32 losses: a few ulps
            atol = 1e-6
        np.testing.assert_allclose(a[ok], b[ok], rtol=rtol, atol=atol, err_msg=column)
