"""Papermill parameters read at the door: lists from text, and every parameter typed once.

Papermill's ``-p`` passes numbers as numbers and everything else as text. A notebook declares
its parameters' types once, as annotations in its parameters cell (``steps: int = 300``,
``sds: list[float] = [0.01, 1.0]``), and calls :func:`typed_parameters` right after it: each
value is converted (a list from ``"0.01, 1"``) or refused with a message naming the parameter
and its type, before anything runs. :func:`listed` reads one list parameter.

Imports: the standard library only; nothing from the rest of the package.
"""

from __future__ import annotations

import ast
import types
import typing


def _item(text):
    """One list item given as text: a Python literal if it is one, else the text, unquoted."""
    text = text.strip()
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text.strip("'\"")


def listed(value):
    """A list parameter as a list, however it was given: by the grid, ``-p`` or ``-y``.

    papermill's ``-p name value`` passes numbers as numbers and everything else as text, so a
    list parameter can arrive as a list (the grid, ``-y "sds: [0.1, 1]"``), as one value
    (``-p sds 0.1``) or as the text of a list (``-p sds "[0.1, 1]"``, ``-p smooth "tanh, gelu"``).
    Text is read as a Python literal; items that are not literals stay text.

    Args:
        value: The parameter's value.

    Returns:
        list: ``value`` itself for a list or tuple, the parsed items for text, else ``[value]``.

    Example:
        >>> listed([0.1, 1.0]), listed(0.1), listed("[1e-5, 0.01]"), listed("tanh, gelu")
        ([0.1, 1.0], [0.1], [1e-05, 0.01], ['tanh', 'gelu'])
        >>> listed("[lecun, 0.25]"), listed("relu"), listed("[[8, 6]]")
        (['lecun', 0.25], ['relu'], [[8, 6]])
    """
    if isinstance(value, (list, tuple)):
        return list(value)
    if not isinstance(value, str):
        return [value]
    text = value.strip()
    try:
        parsed = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        inner = text[1:-1] if text.startswith("[") and text.endswith("]") else text
        return [_item(part) for part in inner.split(",") if part.strip()]
    return list(parsed) if isinstance(parsed, (list, tuple)) else [parsed]


class ParameterError(ValueError):
    """A notebook parameter that is not of its declared type; the message names both."""


_WORDS = {int: "an integer", float: "a number", str: "a text", bool: "true or false"}


def _scalar(value, kind):
    """``value`` as ``kind`` (int, float, str or bool), or ValueError.

    >>> _scalar("300", int), _scalar(2.0, int), _scalar("1e-5", float), _scalar("no", bool)
    (300, 2, 1e-05, False)
    >>> try:
    ...     _scalar("abc", int)
    ... except ValueError as error:
    ...     print(error)
    'abc' is not an integer
    """
    text = value.strip() if isinstance(value, str) else None
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            if text is not None and text.lower() in ("true", "false", "1", "0", "yes", "no"):
                return text.lower() in ("true", "1", "yes")
        elif kind is str:
            if isinstance(value, str):
                return value
        elif not isinstance(value, bool):
            if kind is int and isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, (int, float)) and not (kind is int and isinstance(value, float)):
                return kind(value)
            if text is not None:
                return kind(text)
    except (TypeError, ValueError):
        pass
    raise ValueError(f"{value!r} is not {_WORDS[kind]}")


def _typed(value, kind):
    """``value`` converted to the annotation ``kind``, or ValueError saying which part is wrong.

    ``int``, ``float``, ``str``, ``bool``; ``list`` (any items) and ``list[T]`` (from a list,
    one value, or the text of a list: :func:`listed`); ``A | B`` (the first that fits; ``None``
    from ``None`` or ``"None"``). Other annotations leave the value as it is.

    >>> _typed("0.01, 1", list[float]), _typed("[[8, 6]]", list[list[int]])
    ([0.01, 1.0], [[8, 6]])
    >>> _typed("[1, 2]", "list[int]")  # postponed, as text
    [1, 2]
    >>> try:
    ...     _typed("0.01, abc", list[float])
    ... except ValueError as error:
    ...     print(error)
    item 2, 'abc' is not a number
    """
    if isinstance(kind, str):  # a postponed annotation (``from __future__ import annotations``)
        names = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "None": None}
        try:
            kind = eval(kind, {"__builtins__": {}}, names)  # noqa: S307 - those names only
        except Exception:  # noqa: BLE001 - an annotation of another kind: left as it is
            return value
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is None or kind is type(None):
        if value is None or (isinstance(value, str) and value.strip() == "None"):
            return None
        raise ValueError(f"{value!r} is not None")
    if origin in (typing.Union, types.UnionType):
        reasons = []
        for alternative in args:
            try:
                return _typed(value, alternative)
            except ValueError as err:
                reasons.append(str(err))
        raise ValueError(" and ".join(dict.fromkeys(reasons)))
    if kind is list or origin is list:
        items = listed(value)
        if not args:
            return items
        out = []
        for i, item in enumerate(items, 1):
            try:
                if typing.get_origin(args[0]) is list and not isinstance(item, (list, tuple)):
                    raise ValueError(f"{item!r} is not a list")
                out.append(_typed(item, args[0]))
            except ValueError as err:
                raise ValueError(f"item {i}, {err}") from None
        return out
    if kind in _WORDS:
        return _scalar(value, kind)
    return value


def _spelled(kind):
    """An annotation as the parameters cell writes it: ``int``, ``list[float]``, ``str | None``.

    >>> _spelled(int), _spelled(list[float]), _spelled("list[int]")
    ('int', 'list[float]', 'list[int]')
    """
    if isinstance(kind, str):
        return kind
    return kind.__name__ if isinstance(kind, type) else str(kind).replace("NoneType", "None")


def typed_parameters(namespace, types=None, at_least=None):
    """Convert a notebook's parameters to their declared types, or refuse, naming each.

    One call per notebook, right after its parameters cell: ``book.typed_parameters(globals())``.
    The types are those the parameters cell declares once, as annotations (``steps: int =
    300``, ``sds: list[float] = [0.01, 1.0]``): papermill's ``-p`` passes numbers as numbers
    and everything else as text, so ``-p steps 300`` arrives as 300 and ``-p sds "0.01, 1"`` as
    a text, which becomes ``[0.01, 1.0]``; ``-p steps abc`` is refused before anything runs,
    with the parameter's name and its type. Conversions: ``int`` from an integer, an integral
    float or its text; ``float`` from a number or its text; ``str`` from text only; ``bool``
    from ``true``/``false``/``yes``/``no``/``1``/``0``; lists as :func:`listed` reads them, each
    item converted; ``A | B`` the first that fits. Other annotations are left as they are.

    Args:
        namespace: The notebook's globals (``globals()``), changed in place.
        types: ``{name: type}`` to use instead of the namespace's ``__annotations__``.
        at_least: ``{name: (n, why)}``: a list parameter that needs at least ``n`` items (a
            number parameter: at least ``n``), refused otherwise with ``why`` in the message,
            e.g. ``{"seeds": (2, "the intervals over seeds")}``.

    Returns:
        dict: ``{name: converted value}`` of the typed parameters.

    Raises:
        ParameterError: If a value cannot be converted (one line per parameter, each naming
            the parameter, its type and the value), a typed name is not set, or a value is
            below its ``at_least``.

    Example:
        >>> ns = {"steps": "300", "sds": "0.01, 1", "dataset": "mnist-5k"}
        >>> ns["__annotations__"] = {"steps": int, "sds": list[float], "dataset": str}
        >>> typed_parameters(ns)
        {'steps': 300, 'sds': [0.01, 1.0], 'dataset': 'mnist-5k'}
        >>> try:
        ...     typed_parameters({"steps": "abc", "sds": "0.01, abc"},
        ...                      {"steps": int, "sds": list[float]})
        ... except ParameterError as error:
        ...     print(error)
        parameters of the wrong type:
          steps: expected int, got 'abc' ('abc' is not an integer)
          sds: expected list[float], got '0.01, abc' (item 2, 'abc' is not a number)
        >>> try:
        ...     typed_parameters({"seeds": "0"}, {"seeds": list[int]},
        ...                      at_least={"seeds": (2, "the intervals over seeds")})
        ... except ParameterError as error:
        ...     print(error)
        parameters of the wrong type:
          seeds: needs at least 2 values (the intervals over seeds), got [0]
    """
    declared = dict(namespace.get("__annotations__", {}) if types is None else types)
    converted, wrong = {}, []
    for name, kind in declared.items():
        if name not in namespace:
            wrong.append(f"{name}: declared {_spelled(kind)} but not set")
            continue
        value = namespace[name]
        try:
            converted[name] = _typed(value, kind)
        except ValueError as err:
            wrong.append(f"{name}: expected {_spelled(kind)}, got {value!r} ({err})")
    for name, (least, why) in (at_least or {}).items():
        value = converted.get(name)
        size = len(value) if isinstance(value, list) else value
        if isinstance(size, (int, float)) and size < least:
            values = " values" if isinstance(value, list) else ""
            wrong.append(f"{name}: needs at least {least}{values} ({why}), got {value!r}")
    if wrong:
        raise ParameterError("parameters of the wrong type:\n  " + "\n  ".join(wrong))
    namespace.update(converted)
    return converted
