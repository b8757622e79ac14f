"""Syntax of the OpenFGA modeling language (schema 1.1), turned into :mod:`.schema` nodes.

The language is line oriented: ``model`` / ``schema 1.1`` / ``type`` / ``relations`` /
``define name: expr`` / ``condition name(params) { cel }``, so we parse line by line and
only tokenise the right-hand side of a ``define``. Every error names its 1-based line.
Semantic checks (unknown names, entry points, ...) live in :mod:`._validate`.

A model is written by a tenant, so its size is bounded before any work that grows with
it (``MAX_*`` below, docs/http-api.md "Limits"): every pass over it is then linear, and
the one recursive piece, a ``define``'s expression, nests at most ``MAX_NESTING`` groups.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nexus.authz.schema import (
    Computed,
    Condition,
    Difference,
    Intersection,
    RelationDef,
    RelationRef,
    Rewrite,
    This,
    TupleToUserset,
    TypeDef,
    Union,
)
from nexus.errors import InvalidArgumentError, LimitExceededError

__all__ = [
    "MAX_MODEL_BYTES",
    "MAX_NESTING",
    "MAX_RELATIONS_PER_TYPE",
    "MAX_REWRITE_NODES",
    "MAX_TYPES",
    "ParsedModel",
    "parse_dsl",
    "syntax_error",
]

#: Parenthesised groups one ``define`` may nest. The checker recurses once per level on
#: top of its resolution depth (25), so this keeps a worst-case check far from Python's
#: stack limit; real models nest two or three.
MAX_NESTING = 32
#: Types in one model (OpenFGA's default is 100).
MAX_TYPES = 500
#: ``define`` lines under one type.
MAX_RELATIONS_PER_TYPE = 2_000
#: Rewrite nodes (operands, operators, direct types) in the whole model: what every pass
#: over the model, and the checker's per-model index, costs.
MAX_REWRITE_NODES = 50_000
#: The model text, in UTF-8 bytes (the RPC edge allows 1 MiB for the ``model`` parameter;
#: this also bounds models arriving in an import archive).
MAX_MODEL_BYTES = 1_048_576

# `#` starts a comment only at the start of a line or after whitespace, because it also
# joins a type to a relation in `group#member`.
_COMMENT = re.compile(r"(^|\s)#.*$")
_TOKEN = re.compile(
    r"\s*(?:(?P<butnot>but\s+not)\b|(?P<punct>[\[\](),:#*])|(?P<name>[^\s\[\](),:#*@]+))")
_SCHEMA = re.compile(r"^\s+schema\s+(\S+)\s*$")
_CONDITION = re.compile(r"^condition\s+(\S+?)\s*\((.*)\)\s*\{(.*)$", re.S)
_PARAM_TYPES = {"bool", "string", "int", "uint", "double", "duration", "timestamp",
                "ipaddress", "any"}
_GENERIC_TYPES = {"map", "list"}
_OPERATORS = {"or", "and", "but not"}
_PUNCT = set("[](),:#*")


def syntax_error(line: int, problem: str) -> InvalidArgumentError:
    """The error for an invalid model: ``line N: problem`` (``line`` is 1-based)."""
    return InvalidArgumentError(f"invalid authorization model: line {line}: {problem}",
                                line=line)


def limit_error(line: int, problem: str, limit: str, value: int) -> LimitExceededError:
    """An invalid model because it is too big: a :class:`LimitExceededError` (still an
    ``InvalidArgumentError``) whose ``limit`` names the bound."""
    return LimitExceededError(f"invalid authorization model: line {line}: {problem} "
                              f"(at most {value:,})", line=line, limit=limit, value=value)


@dataclass(frozen=True, slots=True)
class ParsedModel:
    """The syntax tree before validation."""

    schema_version: str
    types: dict[str, TypeDef]
    conditions: dict[str, Condition]


class _Expr:
    """A recursive-descent parser over the tokens of one ``define`` right-hand side.

    OpenFGA's grammar forbids mixing operators without parentheses (``a or b and c``),
    chaining ``but not``, and direct types anywhere but first in a group; so do we.
    """

    def __init__(self, text: str, line: int) -> None:
        self.line = line
        self.depth = 0  # parenthesised groups open at the current position
        self.nodes = 0  # rewrite nodes and direct types built, for MAX_REWRITE_NODES
        self.tokens: list[str] = []
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise syntax_error(line, f"unexpected character {text[pos:].strip()[:1]!r}")
            tok = m.group("butnot") and "but not" or m.group("punct") or m.group("name")
            self.tokens.append(tok)
            pos = m.end()
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None, *, what: str | None = None) -> str:
        tok = self.peek()
        if tok is None:
            raise syntax_error(self.line, f"expected {what or repr(expected)}, got end of line")
        if expected is not None and tok != expected:
            raise syntax_error(self.line, f"expected {expected!r}, got {tok!r}")
        self.pos += 1
        return tok

    def name(self, what: str) -> str:
        tok = self.take(what=what)
        if tok in _OPERATORS or tok in _PUNCT or tok in ("from", "with"):
            raise syntax_error(self.line, f"expected {what}, got {tok!r}")
        return tok

    def parse(self) -> Rewrite:
        node = self.expr()
        if self.peek() is not None:
            raise syntax_error(self.line, f"unexpected {self.peek()!r} after the expression")
        return node

    def expr(self, *, direct_ok: bool = True) -> Rewrite:
        # Direct types may open the definition or a group in that first position only:
        # `([user] or a) but not b` is valid, `a but not ([user] or b)` is not.
        first = self.operand(direct_ok=direct_ok)
        op = self.peek()
        if op in ("or", "and"):
            children = [first]
            while self.peek() == op:
                self.take()
                children.append(self.operand(direct_ok=False))
            result: Rewrite = Union(tuple(children)) if op == "or" else Intersection(
                tuple(children))
            self.nodes += 1
        elif op == "but not":
            self.take()
            result = Difference(first, self.operand(direct_ok=False))
            self.nodes += 1
        else:
            return first
        if self.peek() in _OPERATORS:
            raise syntax_error(self.line, f"cannot combine {op!r} with {self.peek()!r} "
                               "without parentheses")
        return result

    def operand(self, *, direct_ok: bool) -> Rewrite:
        tok = self.peek()
        if tok == "[":
            if not direct_ok:
                raise syntax_error(self.line, "direct types [...] must come first in a group")
            return self.direct()
        if tok == "(":
            if self.depth >= MAX_NESTING:
                # Checked before descending: the parser itself recurses per group.
                raise limit_error(self.line, f"the expression nests more than {MAX_NESTING} "
                                  "parenthesised groups", "max_nesting", MAX_NESTING)
            self.take()
            self.depth += 1
            node = self.expr(direct_ok=direct_ok)
            self.take(")")
            self.depth -= 1
            return node
        relation = self.name("a relation name")
        self.nodes += 1
        if self.peek() == "from":
            self.take()
            return TupleToUserset(self.name("a relation name after 'from'"), relation)
        return Computed(relation)

    def direct(self) -> This:
        self.take("[")
        refs: list[RelationRef] = []
        while True:
            type_name = self.name("a type name")
            wildcard = relation = condition = None
            if self.peek() == ":":
                self.take()
                self.take("*")
                wildcard = True
            elif self.peek() == "#":
                self.take()
                relation = self.name("a relation name after '#'")
            if self.peek() == "with":
                self.take()
                condition = self.name("a condition name after 'with'")
            refs.append(RelationRef(type_name, relation, bool(wildcard), condition))
            self.nodes += 1
            tok = self.take(what="',' or ']'")
            if tok == "]":
                break
            if tok != ",":
                raise syntax_error(self.line, f"expected ',' or ']', got {tok!r}")
        return This(tuple(refs))


def _strip(line: str) -> str:
    return _COMMENT.sub("", line).rstrip()


def _condition(lines: list[tuple[int, str]], i: int) -> tuple[Condition, int]:
    """Parse ``condition name(params) { body }`` starting at ``lines[i]``; the body may
    span lines. Returns the condition and the index of the next line."""
    number, first = lines[i]
    parts = [first.strip()]
    opened, closed = parts[0].count("{"), parts[0].count("}")
    j = i
    # Counted per line, not over the text so far: re-counting would be quadratic in a
    # long condition.
    while opened > closed or not opened:
        j += 1
        if j >= len(lines):
            raise syntax_error(number, "condition body is not closed with '}'")
        parts.append(lines[j][1])
        opened += lines[j][1].count("{")
        closed += lines[j][1].count("}")
    text = "\n".join(parts)
    m = _CONDITION.match(text)
    if m is None:
        raise syntax_error(number, "expected 'condition name(param: type, ...) { expression }'")
    name, params_text, rest = m.groups()
    body, _, after = rest.rpartition("}")
    if after.strip():
        raise syntax_error(lines[j][0], f"unexpected {after.strip()!r} after condition body")
    params: list[tuple[str, str]] = []
    for part in filter(None, (p.strip() for p in params_text.split(","))):
        pname, colon, ptype = (s.strip() for s in part.partition(":"))
        ptype = re.sub(r"\s+", "", ptype)
        base, _, generic = ptype.partition("<")
        generic = generic.removesuffix(">") if generic.endswith(">") else generic
        ok = (base in _PARAM_TYPES and not generic) or (
            base in _GENERIC_TYPES and generic in _PARAM_TYPES)
        if not colon or not pname or not ok:
            raise syntax_error(number, f"invalid condition parameter {part!r}")
        if any(pname == p for p, _ in params):
            raise syntax_error(number, f"parameter {pname!r} is already defined in the "
                               f"condition {name!r}")
        params.append((pname, ptype))
    if not body.strip():
        raise syntax_error(number, f"condition {name!r} has an empty expression")
    return Condition(name, tuple(params), body.strip(), number), j + 1


def parse_dsl(text: str) -> ParsedModel:
    """Parse DSL text into types and conditions; raises :class:`InvalidArgumentError`
    (:class:`LimitExceededError` for a model over one of the ``MAX_*`` bounds)."""
    if len(text) > MAX_MODEL_BYTES or len(text.encode("utf-8")) > MAX_MODEL_BYTES:
        raise limit_error(1, "the model text is too long, in bytes", "max_model_bytes",
                          MAX_MODEL_BYTES)
    lines = [(n, _strip(raw)) for n, raw in enumerate(text.splitlines(), start=1)]
    lines = [(n, s) for n, s in lines if s.strip()]
    if not lines or lines[0][1].strip() != "model":
        number = lines[0][0] if lines else 1
        if lines and lines[0][1].split()[0] == "module":
            raise syntax_error(number, "modular models are not supported; expected 'model'")
        raise syntax_error(number, "expected 'model' as the first statement")
    if len(lines) < 2 or not (m := _SCHEMA.match(lines[1][1])):
        raise syntax_error(lines[1][0] if len(lines) > 1 else lines[0][0] + 1,
                           "expected an indented 'schema 1.1' after 'model'")
    version = m.group(1)
    if not re.fullmatch(r"\d+\.\d+", version):
        raise syntax_error(lines[1][0], f"invalid schema version {version!r}")
    if version != "1.1":
        raise syntax_error(lines[1][0], f"unsupported schema version {version} "
                           "(only 1.1 is supported)")
    types: dict[str, TypeDef] = {}
    conditions: dict[str, Condition] = {}
    relations: dict[str, RelationDef] | None = None
    current: tuple[str, int] | None = None
    in_relations = False
    nodes = 0

    def close_type() -> None:
        if current is not None:
            if in_relations and not relations:
                raise syntax_error(current[1], f"type {current[0]!r} has 'relations' but "
                                   "no 'define'")
            types[current[0]] = TypeDef(current[0], dict(relations or {}), current[1])

    i = 2
    while i < len(lines):
        number, line = lines[i]
        words = line.split()
        keyword = words[0]
        indented = line[0].isspace()
        if keyword == "type":
            if len(words) != 2:
                raise syntax_error(number, "expected 'type <name>'")
            close_type()
            if words[1] in types or (current and words[1] == current[0]):
                raise syntax_error(number, f"the type {words[1]!r} is a duplicate")
            if len(types) >= MAX_TYPES:
                raise limit_error(number, "too many types in the model", "max_types",
                                  MAX_TYPES)
            current, relations, in_relations = (words[1], number), {}, False
        elif keyword == "relations" and indented:
            if current is None or in_relations or len(words) != 1:
                raise syntax_error(number, "'relations' must follow a 'type' line, once")
            in_relations = True
        elif keyword == "define" and indented:
            if not in_relations or relations is None or current is None:
                raise syntax_error(number, "'define' is only allowed under 'relations'")
            head, colon, expr = line.strip()[len("define"):].partition(":")
            name = head.strip()
            if not colon or not name or len(name.split()) != 1:
                raise syntax_error(number, "expected 'define <relation>: <expression>'")
            if name in relations:
                raise syntax_error(number, f"{name!r} is already defined in {current[0]!r}")
            if len(relations) >= MAX_RELATIONS_PER_TYPE:
                raise limit_error(number, f"too many relations in type {current[0]!r}",
                                  "max_relations_per_type", MAX_RELATIONS_PER_TYPE)
            parser = _Expr(expr, number)
            relations[name] = RelationDef(name, parser.parse(), number)
            nodes += parser.nodes
            if nodes > MAX_REWRITE_NODES:
                raise limit_error(number, "too many rewrite nodes (operands, operators and "
                                  "direct types) in the model", "max_rewrite_nodes",
                                  MAX_REWRITE_NODES)
        elif keyword.startswith("condition") and not indented:
            close_type()
            current, relations, in_relations = None, None, False
            cond, i = _condition(lines, i)
            if cond.name in conditions:
                raise syntax_error(number, f"condition {cond.name!r} is already defined "
                                   "in the model")
            conditions[cond.name] = cond
            continue
        else:
            raise syntax_error(number, f"unexpected {line.strip()[:40]!r}")
        i += 1
    close_type()
    return ParsedModel(version, types, conditions)
