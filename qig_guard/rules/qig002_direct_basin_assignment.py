"""QIG002: writing a model's target basin directly instead of through its setter."""

from __future__ import annotations

import re
from collections.abc import Iterator

import libcst as cst

from qig_guard.engine.resolve import dotted_name
from qig_guard.facts.torch_api import VALUE_KEEPING_METHODS
from qig_guard.facts.vocabulary import basin_attribute
from qig_guard.rules.base import Invalid, Rule, positional_args
from qig_guard.rules.gates import Guarded, GuardedWrite, Identifiers, Named, Pattern

_SETATTR = frozenset({"setattr", "builtins.setattr", "object.__setattr__"})
# nn.Module methods that (re)bind an attribute named by their first argument.
_REGISTERS = frozenset({"register_buffer", "register_parameter"})


class DirectBasinAssignment(Rule):
    """
    ## What it does
    Flags writes to a model's basin that bypass its setter:
    `model.basin_matcher.target_basin = new_basin`, augmented and annotated
    assignment, `.target_basin.data = ...`, in-place tensor methods such as
    `.target_basin.copy_(...)` (also `torch.nn.init.*_` on it), item assignment
    into it, `setattr(obj, "target_basin", ...)` and
    `obj.register_buffer("target_basin", ...)`.

    Besides `target_basin`, a basin attribute (`reference_basin`,
    `identity_attractor`) is guarded when the project sets it through a
    setter: the project index (every file of the run) records each class's
    setters, the methods other than `__init__` that assign `self.ATTR` from a
    parameter. A write is flagged when the index shows the receiver's class
    (`self.kernel`, where the project stores a `Kernel` in `kernel`) has a
    setter for the attribute, or when every class that writes the attribute
    has a `set*` method for it; a generic `update` on one of many classes with
    a `.basin` does not make every `.basin` write a violation.

    Reads are not flagged, nor is a class writing its own attribute
    (`self.target_basin = ...` in any of its methods: that is where the write
    belongs), nor a basin attribute no class guards with a setter (a record's
    `basin_coords`).

    The attribute (`protected-attribute`), the setter (`basin-setter`) and
    the owners (`basin-owners`) are configurable.

    ## Why is this bad
    The basin is the model's identity. The setter validates the new basin
    (dimension, normalisation, provenance) and keeps the matcher's derived
    state consistent; a direct write skips all of that and silently changes
    what the model converges to.

    ## Example
    ```python
    model.basin_matcher.target_basin = new_basin
    ```

    ## Use instead
    ```python
    model.basin_matcher.set_target_basin(new_basin)
    ```
    or load the basin from its JSON file with validation.

    ## Fix safety
    `obj.ATTR = v` and `setattr(obj, "ATTR", v)` are rewritten to
    `obj.SETTER(v)` (`set_target_basin`, or the project's only setter for
    `ATTR`), keeping the value's own line breaks. The fix is safe when the
    project index shows that `obj`'s class defines the setter (the project
    stores a `BasinMatcher` in `basin_matcher` attributes, and `BasinMatcher`
    defines `set_target_basin`); otherwise it is unsafe, because the object
    may not define it. `= None` (removing the basin) and other shapes
    (in-place updates, item and `.data` writes) have no mechanical rewrite and
    are left to the author.
    """

    code = "QIG002"
    name = "direct-basin-assignment"
    summary = "target basin written directly; use the basin setter"
    # A write of the configured attribute, or of a basin attribute the project guards
    # with a setter, in each way the rule reads one: an assignment, `.data =`, `[i] =`,
    # `.copy_(...)` (``GuardedWrite``), an in-place function (`nn.init.normal_(...)`),
    # `setattr(x, "target_basin", v)` and `register_buffer("target_basin", ...)`.
    gate = (
        GuardedWrite(protected=True)
        | (
            (Guarded(basins=True) | Named("protected_attribute"))
            & Pattern(re.compile(r"\w_[\s\\]*\("))
        )
        | (
            Named("protected_attribute")
            & Identifiers(*(q.rsplit(".", 1)[-1] for q in _SETATTR | _REGISTERS))
        )
    )
    INVALID = (
        Invalid(
            "model.basin_matcher.target_basin = new_basin\n",
            fixed="model.basin_matcher.set_target_basin(new_basin)\n",
            unsafe=True,
        ),
        Invalid(
            "class BasinMatcher:\n"
            "    def set_target_basin(self, basin):\n"
            "        self.target_basin = basin\n"
            "class Gary:\n"
            "    def __init__(self):\n"
            "        self.basin_matcher = BasinMatcher()\n"
            "gary.basin_matcher.target_basin = new_basin\n",
            fixed="class BasinMatcher:\n"
            "    def set_target_basin(self, basin):\n"
            "        self.target_basin = basin\n"
            "class Gary:\n"
            "    def __init__(self):\n"
            "        self.basin_matcher = BasinMatcher()\n"
            "gary.basin_matcher.set_target_basin(new_basin)\n",
        ),
        Invalid(
            "gary.target_basin = load_basin(path)\n",
            fixed="gary.set_target_basin(load_basin(path))\n",
            unsafe=True,
        ),
        Invalid("model.basin_matcher.target_basin.copy_(basin)\n", line=1, column=1),
        Invalid("model.basin_matcher.target_basin += 0.1 * direction\n", line=1, column=1),
        Invalid(
            'setattr(model.basin_matcher, "target_basin", new_basin)\n',
            fixed="model.basin_matcher.set_target_basin(new_basin)\n",
            unsafe=True,
        ),
        Invalid(
            "class Kernel:\n"
            "    def set_reference(self, basin):\n"
            "        self.reference_basin = basin / basin.sum()\n"
            "child.reference_basin = parent.reference_basin\n",
            fixed="class Kernel:\n"
            "    def set_reference(self, basin):\n"
            "        self.reference_basin = basin / basin.sum()\n"
            "child.set_reference(parent.reference_basin)\n",
            unsafe=True,
        ),
    )
    VALID = (
        "current = model.basin_matcher.target_basin.detach().clone()\n",
        "class Faculty:\n"
        "    def set_basin(self, basin):\n"
        "        self.basin = basin / basin.sum()\n",
        "record.basin_coords = coords  # no class guards it with a setter\n",
        "model.basin_matcher.set_target_basin(new_basin)\n",
        "class BasinMatcher(nn.Module):\n"
        "    def set_target_basin(self, basin):\n"
        "        self.target_basin = basin\n",
    )

    # -- what is written -------------------------------------------------------

    def _protected(self, node: cst.BaseExpression) -> cst.Attribute | None:
        """``x.target_basin`` for it, its ``.data`` and items of either; likewise a basin
        attribute that the receiver's class guards with a setter."""
        while isinstance(node, cst.Subscript) or (
            isinstance(node, cst.Attribute) and node.attr.value == "data"
        ):
            node = node.value
        if isinstance(node, cst.Attribute) and self._guarded(node):
            return node
        return None

    def _guarded(self, node: cst.Attribute) -> bool:
        """The configured attribute; or a basin attribute (``reference_basin``,
        ``identity_attractor``) guarded by a setter in the project, when the index shows
        the receiver's class has one or every class writing the attribute has a
        ``set*`` method for it."""
        attribute = node.attr.value
        if attribute == self.config.protected_attribute:
            return True
        project = self.context.project
        setters = project.setters_of(attribute)
        if not setters or not basin_attribute(attribute, self.config):
            return False
        receivers = self._receiver_classes(node.value)
        if receivers:
            return any(klass in receivers for klass, _ in setters)
        conventional = {klass for klass, method in setters if method.startswith("set")}
        return conventional == project.writers_of(attribute)

    def _receiver_classes(self, receiver: cst.BaseExpression) -> frozenset[str]:
        """The project classes held in the receiver's attribute (``x.basin_matcher``)."""
        owner = dotted_name(receiver)
        if owner is None or "." not in owner:
            return frozenset()
        return self.context.project.classes_held_in(owner.rsplit(".", 1)[-1])

    def _owns(self, receiver: cst.BaseExpression) -> bool:
        """True for ``self`` in a method: a class writing its own attribute (in its
        ``__init__``, its setter or any other method) is where the write belongs. A
        function's ``self`` parameter outside a class is taken the same way (a method
        defined apart and attached to its class)."""
        if isinstance(receiver, cst.Name) and receiver.value == "self":
            return True
        scopes = self.context.scopes.scopes
        for index in range(len(scopes) - 1, 0, -1):
            klass = scopes[index - 1].node
            method = scopes[index].node
            if isinstance(klass, cst.ClassDef) and isinstance(method, cst.FunctionDef):
                break
        else:
            return False
        params = method.params.posonly_params or method.params.params
        return bool(
            params and isinstance(receiver, cst.Name) and receiver.value == params[0].name.value
        )

    def _setter(self, attribute: str) -> str | None:
        """The setter's name: the configured one, or the project's only setter name."""
        if attribute == self.config.protected_attribute:
            return self.config.basin_setter
        names = {method for _, method in self.context.project.setters_of(attribute)}
        return names.pop() if len(names) == 1 else None

    def _receiver_defines(self, receiver: cst.BaseExpression, setter: str) -> bool:
        """True when the project index shows that the receiver's class defines ``setter``:
        ``model.basin_matcher`` where the project stores a ``BasinMatcher`` in
        ``basin_matcher`` attributes and ``BasinMatcher`` defines the setter."""
        classes = self._receiver_classes(receiver)
        project = self.context.project
        return bool(classes) and all(project.defines(klass, setter) for klass in classes)

    def _flag(
        self,
        node: cst.CSTNode,
        attribute: cst.Attribute,
        value: cst.BaseExpression | None = None,
    ) -> None:
        """Report a write to ``attribute`` at ``node``; with ``value``, offer the setter fix."""
        receiver = attribute.value
        if self._owns(receiver):
            return
        name = attribute.attr.value
        setter = self._setter(name)
        where = self.context.code_for(receiver)
        replacement: cst.CSTNode | None = None
        safe = False
        if (
            setter is not None
            and value is not None
            and not isinstance(value, (cst.Yield, cst.StarredElement))
            and not (isinstance(value, cst.Name) and value.value == "None")
        ):
            call = _setter_call(receiver, setter, value)
            replacement = cst.Expr(call) if isinstance(node, cst.Assign) else call
            safe = self._receiver_defines(receiver, setter)
        use = f"`{where}.{setter}(...)`" if setter else "its class's setter"
        self.report(
            node,
            f"`{where}.{name}` written directly; use {use}",
            replacement=replacement,
            fix_description=f"Call `{where}.{setter}(...)`",
            safe=safe,
        )

    # -- assignments -----------------------------------------------------------

    def visit_Assign(self, node: cst.Assign) -> None:
        fixable = len(node.targets) == 1
        for target in node.targets:
            for element in _elements(target.target):
                attribute = self._protected(element)
                if attribute is None:
                    continue
                direct = fixable and element is attribute and target.target is element
                self._flag(node, attribute, node.value if direct else None)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        attribute = self._protected(node.target)
        if attribute is not None:
            self._flag(node, attribute)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        attribute = self._protected(node.target)
        if attribute is not None and node.value is not None:
            self._flag(node, attribute)

    # -- calls -----------------------------------------------------------------

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute):
            method = func.attr.value
            if (
                method.endswith("_")
                and not method.startswith("__")
                and method not in VALUE_KEEPING_METHODS
            ):
                attribute = self._protected(func.value)
                if attribute is not None:
                    self._flag(node, attribute)
                    return
        args = positional_args(node)
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value in _REGISTERS
            and args
            and self._names_protected(args[0])
        ):
            attribute = cst.Attribute(
                value=func.value, attr=cst.Name(self.config.protected_attribute)
            )
            self._flag(node, attribute)
        elif len(args) == 3 and self._names_protected(args[1]):
            if self.context.qualified_name(func) in _SETATTR:
                self._check_setattr(node, args[0], args[2])
        elif args and (attribute := self._protected(args[0])) is not None:
            qualified = self.context.qualified_name(func) or ""
            if qualified.startswith("torch.nn.init.") and qualified.endswith("_"):
                self._flag(node, attribute)

    def _names_protected(self, node: cst.BaseExpression) -> bool:
        """True for the string literal ``"target_basin"``."""
        return (
            isinstance(node, cst.SimpleString)
            and node.evaluated_value == self.config.protected_attribute
        )

    def _check_setattr(
        self,
        node: cst.Call,
        receiver: cst.BaseExpression,
        value: cst.BaseExpression,
    ) -> None:
        """``setattr(receiver, "target_basin", value)``."""
        attribute = cst.Attribute(value=receiver, attr=cst.Name(self.config.protected_attribute))
        fixable = isinstance(receiver, (cst.Name, cst.Attribute, cst.Subscript, cst.Call))
        self._flag(node, attribute, value if fixable else None)


def _elements(target: cst.BaseExpression) -> Iterator[cst.BaseExpression]:
    """The single targets of a (possibly tuple-unpacking) assignment target."""
    if isinstance(target, (cst.Tuple, cst.List)):
        for element in target.elements:
            yield from _elements(element.value)
    elif isinstance(target, cst.StarredElement):
        yield from _elements(target.value)
    else:
        yield target


def _setter_call(receiver: cst.BaseExpression, setter: str, value: cst.BaseExpression) -> cst.Call:
    """``receiver.setter(value)``. A bare tuple gets parentheses; a parenthesised value
    lends its parentheses, with their line breaks, to the call: ``x = (\n  v\n)`` becomes
    ``x.set(\n  v\n)``, not ``x.set((\n  v\n))``."""
    func = cst.Attribute(value=receiver, attr=cst.Name(setter))
    if isinstance(value, cst.Tuple) and not value.lpar:
        value = value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    elif value.lpar and not isinstance(value, cst.Tuple):
        before = value.lpar[0].whitespace_after
        after = value.rpar[-1].whitespace_before
        inner = value.with_changes(lpar=value.lpar[1:], rpar=value.rpar[:-1])
        return cst.Call(
            func=func,
            args=[cst.Arg(inner, whitespace_after_arg=after)],
            whitespace_before_args=before,
        )
    return cst.Call(func=func, args=[cst.Arg(value)])
