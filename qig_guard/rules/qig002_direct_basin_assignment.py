"""QIG002: writing a model's target basin directly instead of through its setter."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

import libcst as cst

from qig_guard.config import Config
from qig_guard.names import matches_any
from qig_guard.resolve import dotted_name
from qig_guard.rules.base import Invalid, Rule, compile_trigger, positional_args

_INIT = re.compile(r"init\b")
_SETATTR = frozenset({"setattr", "builtins.setattr", "object.__setattr__"})
# nn.Module methods that (re)bind an attribute named by their first argument.
_REGISTERS = frozenset({"register_buffer", "register_parameter"})
# In-place tensor methods that leave the values alone.
_KEEPS_VALUES = frozenset({"requires_grad_", "share_memory_", "detach_"})


@lru_cache(maxsize=8)
def _trigger(attribute: str) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """Text that may write ``attribute``: as an assignment target, through an in-place
    method, or named by a string in ``setattr``/``register_buffer``."""
    name = re.escape(attribute)
    string = rf"[rRuU]?['\"]+{name}['\"]"
    between = r"(?:\s|\\|#[^\n]*)*"
    written = compile_trigger(
        rf"\.[\s\\]*{name}\b"
        r"(?:[\s\\)]*(?:\.[\s\\]*data\b|\[[^\[\]\n]*\]))*[\s\\)\]]*"
        r"(?:\["  # a subscript too complex to follow
        r"|\.[\s\\]*\w*_[\s\\]*\("  # .copy_(
        r"|:"  # annotated assignment
        r"|(?:[-+*/@%&|^]|//|\*\*|<<|>>)?=(?!=)"  # = and +=
        r"|,[^\n=]*=(?!=)"  # x.target_basin, y = ...
        r"|,[ \t]*(?:#[^\n]*)?\\?\n\s*[\w*(\[)\]\\])",  # a target list going on
    )
    setattr_call = compile_trigger(rf",{between}{string}[\s\\]*,")
    register_call = compile_trigger(rf"register_(?:buffer|parameter)[\s\\)]*\({between}{string}")
    return written, setattr_call, register_call


def _elements(target: cst.BaseExpression) -> Iterator[cst.BaseExpression]:
    """The single targets of a (possibly tuple-unpacking) assignment target."""
    if isinstance(target, (cst.Tuple, cst.List)):
        for element in target.elements:
            yield from _elements(element.value)
    elif isinstance(target, cst.StarredElement):
        yield from _elements(target.value)
    else:
        yield target


def _argument(value: cst.BaseExpression) -> cst.BaseExpression:
    """``value`` as a call's only argument (a bare tuple needs parentheses)."""
    if isinstance(value, cst.Tuple) and not value.lpar:
        return value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return value


class DirectBasinAssignment(Rule):
    """
    ## What it does
    Flags writes to a model's target basin that bypass its setter:
    `model.basin_matcher.target_basin = new_basin`, augmented and annotated
    assignment, `.target_basin.data = ...`, in-place tensor methods such as
    `.target_basin.copy_(...)` (also `torch.nn.init.*_` on it), item assignment
    into it, `setattr(obj, "target_basin", ...)` and
    `obj.register_buffer("target_basin", ...)`. Reads are not flagged,
    nor is the owning class writing its own attribute: `self.target_basin`
    inside a class that defines the setter or is named like a basin owner
    (`BasinMatcher`), or inside any class's `__init__`.

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
    `obj.target_basin = v` and `setattr(obj, "target_basin", v)` are rewritten
    to `obj.set_target_basin(v)`. The fix is safe when `obj` is a name chain
    ending in a basin owner (`model.basin_matcher`), which defines the setter;
    otherwise it is unsafe, because the object may not define the setter.
    Other shapes (in-place updates, item and `.data` writes) have no
    mechanical rewrite and are left to the author.
    """

    code = "QIG002"
    name = "direct-basin-assignment"
    summary = "target basin written directly; use the basin setter"
    INVALID = (
        Invalid(
            "model.basin_matcher.target_basin = new_basin\n",
            fixed="model.basin_matcher.set_target_basin(new_basin)\n",
        ),
        Invalid(
            "gary.target_basin = load_basin(path)\n",
            fixed="gary.set_target_basin(load_basin(path))\n",
            unsafe=True,
        ),
        Invalid("model.basin_matcher.target_basin.copy_(basin)\n"),
        Invalid("model.basin_matcher.target_basin += 0.1 * direction\n"),
        Invalid(
            'setattr(model.basin_matcher, "target_basin", new_basin)\n',
            fixed="model.basin_matcher.set_target_basin(new_basin)\n",
        ),
    )
    VALID = (
        "current = model.basin_matcher.target_basin.detach().clone()\n",
        "model.basin_matcher.set_target_basin(new_basin)\n",
        "class BasinMatcher(nn.Module):\n"
        "    def set_target_basin(self, basin):\n"
        "        self.target_basin = basin\n",
    )

    @classmethod
    def could_match(cls, source: str, config: Config) -> bool:
        attribute = config.protected_attribute
        if attribute not in source:
            return False
        written, setattr_call, register_call = _trigger(attribute)
        return bool(
            written.search(source)
            or ("setattr" in source and setattr_call.search(source))
            or ("register_" in source and register_call.search(source))
            or (
                "init" in source and _INIT.search(source)
            )  # torch.nn.init.*_(x.target_basin), under any alias
        )

    # -- what is written -------------------------------------------------------

    def _protected(self, node: cst.BaseExpression) -> cst.Attribute | None:
        """``x.target_basin`` for it, its ``.data`` and items of either."""
        while isinstance(node, cst.Subscript) or (
            isinstance(node, cst.Attribute) and node.attr.value == "data"
        ):
            node = node.value
        if isinstance(node, cst.Attribute) and node.attr.value == self.config.protected_attribute:
            return node
        return None

    def _owns(self, receiver: cst.BaseExpression) -> bool:
        """True for ``self`` in a method of a basin owner, or of any class's ``__init__``."""
        scopes = self.context.scopes.scopes
        for index in range(len(scopes) - 1, 0, -1):
            klass = scopes[index - 1].node
            method = scopes[index].node
            if isinstance(klass, cst.ClassDef) and isinstance(method, cst.FunctionDef):
                break
        else:
            return False
        params = method.params.posonly_params or method.params.params
        if not (
            params and isinstance(receiver, cst.Name) and receiver.value == params[0].name.value
        ):
            return False
        return method.name.value == "__init__" or self._is_owner(klass)

    def _is_owner(self, klass: cst.ClassDef) -> bool:
        names = [klass.name.value, *(dotted_name(base.value) or "" for base in klass.bases)]
        if any(matches_any(name.split(".")[-1], self.config.basin_owners) for name in names):
            return True
        return any(
            isinstance(statement, cst.FunctionDef)
            and statement.name.value == self.config.basin_setter
            for statement in klass.body.body
        )

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
        setter = self.config.basin_setter
        where = self.context.code_for(receiver)
        replacement: cst.CSTNode | None = None
        safe = False
        if value is not None and not isinstance(value, (cst.Yield, cst.StarredElement)):
            call = cst.Call(
                func=cst.Attribute(value=receiver, attr=cst.Name(setter)),
                args=[cst.Arg(_argument(value))],
            )
            replacement = cst.Expr(call) if isinstance(node, cst.Assign) else call
            owner = dotted_name(receiver)
            safe = owner is not None and matches_any(owner.split(".")[-1], self.config.basin_owners)
        self.report(
            node,
            f"`{where}.{attribute.attr.value}` written directly; use `{where}.{setter}(...)`",
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
            if method.endswith("_") and not method.startswith("__") and method not in _KEEPS_VALUES:
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
