"""A Sphinx extension of the book's site: references to re-exported names resolve.

The API page (``book/api.md``) documents every object once, in the module that defines it, e.g.
``hessinit.curvature.kronecker.kron_norms``. Docstrings may name an object by any path it is
importable as: ``hessinit.curvature.kron_norms`` (the package's re-export), ``hessinit.kron_norms``
or, inside :mod:`hessinit.curvature`, just ``kron_norms``. When Sphinx finds no object of that
name, :func:`resolve` imports the name and links to the documented object that is the same
Python object; failing that, a name that ends exactly one documented name of the package (a
short ``kron_norms`` anywhere) links to that object. Anything else keeps Sphinx's warning, which
``-W`` turns into a failed build. Names outside ``hessinit`` are left alone.

Enabled in ``_config.yml`` (``sphinx: extra_extensions``).

Imports: the standard library (Sphinx when a reference is resolved); the package's modules only
by name, through ``importlib``, while Sphinx builds the site.
"""

from __future__ import annotations

import importlib

_MISSING = object()


def lookup(name):
    """The object importable as the dotted ``name``, or None if there is none.

    The longest importable module prefix is imported, the rest are attributes.

    Args:
        name: A dotted name such as ``"hessinit.curvature.kron_norms"``.

    Returns:
        The object, or None.

    Example:
        >>> from hessinit.book import grid
        >>> lookup("hessinit.book.read_grid") is None
        True
        >>> lookup("hessinit.book.grid.read_grid") is grid.read_grid
        True
    """
    obj = _lookup(name)
    return None if obj is _MISSING else obj


def _lookup(name):
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr, _MISSING)
            if obj is _MISSING:
                break
        return obj
    return _MISSING


def documented_name(name, documented):
    """The documented name of the object importable as ``name``, or None.

    Args:
        name: A dotted name under ``hessinit``.
        documented: The documented dotted names (the Python domain's objects).

    Returns:
        str or None: The documented name with the same last component whose object is the
        object ``name`` imports; None if ``name`` is documented itself, imports nothing or
        matches no documented object.

    Example:
        >>> documented_name("hessinit.book.glue", ["hessinit.book.notebook.glue"])
        'hessinit.book.notebook.glue'
        >>> documented_name("hessinit.book.Runner", ["hessinit.book.runner.Runner"]) is None
        True
    """
    if not name.startswith("hessinit.") or name in documented:
        return None
    obj = _lookup(name)
    if obj is _MISSING:
        return None
    short = name.rsplit(".", 1)[-1]
    for candidate in documented:
        if candidate.rsplit(".", 1)[-1] == short and _lookup(candidate) is obj:
            return candidate
    return None


def unique_suffix(target, documented):
    """The one documented name of the package that ends with ``.target``, or None.

    Args:
        target: A name as written in a reference, e.g. ``"kron_norms"`` or
            ``"kronecker.kron_norms"``.
        documented: The documented dotted names.

    Returns:
        str or None: The name if exactly one matches.

    Example:
        >>> names = ["hessinit.nn.models.mlp", "hessinit.nn.losses.cross_entropy"]
        >>> unique_suffix("mlp", names), unique_suffix("models.mlp", names)
        ('hessinit.nn.models.mlp', 'hessinit.nn.models.mlp')
        >>> unique_suffix("cross", names) is None
        True
    """
    hits = [n for n in documented if n.startswith("hessinit.") and n.endswith("." + target)]
    return hits[0] if len(hits) == 1 else None


def resolve(app, env, node, contnode):
    """Sphinx's ``missing-reference`` handler: link a re-exported name to its documentation.

    Args:
        app: The Sphinx application.
        env: The build environment.
        node: The unresolved ``pending_xref``.
        contnode: The node to wrap in the reference.

    Returns:
        The reference node, or None to leave the reference to Sphinx (and its warning).
    """
    from sphinx.util.nodes import make_refnode

    if node.get("refdomain") != "py":
        return None
    domain = env.get_domain("py")
    objtypes = set(domain.objtypes_for_role(node["reftype"]) or ())
    documented = {
        name: entry
        for name, entry in domain.objects.items()
        if not entry.aliased and (entry.objtype in objtypes or node["reftype"] == "obj")
    }
    target, module = node["reftarget"], node.get("py:module")
    names = [target] + ([f"{module}.{target}"] if module else [])
    found = next(filter(None, (documented_name(n, documented) for n in names)), None)
    if found is None and module and module.startswith("hessinit"):
        found = unique_suffix(target, documented)
    if found is None:
        return None
    entry = documented[found]
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, found)


def setup(app):
    """Register :func:`resolve` with Sphinx.

    Returns:
        dict: The extension's metadata (safe for parallel reading and writing).
    """
    app.connect("missing-reference", resolve)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
