"""AWS's documented policy evaluation, for the policies moto stores but never evaluates.

moto accepts any bucket, queue, topic or key policy and enforces none of them, so a policy that would refuse every
upload passes every moto test. The policy tests evaluate the template's resolved policies here instead, for tables of
requests whose outcome AWS documents. What this implements, from the IAM User Guide:

- *Policy evaluation logic*: an explicit Deny in any applicable statement wins; otherwise an Allow in any applicable
  statement allows; otherwise the request is implicitly denied.
- *Condition operators*: every operator of a Condition block must hold (AND), every key of an operator must hold
  (AND), and one key with several values holds when any value matches (OR) — for a negated operator when none
  matches. A key absent from the request context does not match, so the condition is false; a negated operator
  (StringNotEquals, StringNotLike, ArnNotEquals, ArnNotLike) on an absent key is true; ``...IfExists`` on an absent
  key is true, whatever the operator; ``Null: true`` holds when the key is absent, ``Null: false`` when present.
- Condition key names are case-insensitive; String and Arn values are compared case-sensitively; ``Bool`` compares
  "true"/"false"; ArnEquals and ArnLike match each of the ARN's six colon-separated parts with ``*`` and ``?``.
- Actions match case-insensitively with wildcards; resources case-sensitively with wildcards; Not* elements invert.

An operator this module does not know raises: a new condition in the template must be taught here, not skipped.
"""

import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache


class Decision(StrEnum):
    ALLOW = "allow"  # an applicable Allow and no applicable Deny
    DENY = "deny"  # an applicable explicit Deny
    IMPLICIT_DENY = "implicit-deny"  # no statement applies: refused unless another policy allows


@dataclass(frozen=True)
class Request:
    """One request as a policy sees it: who, what action on which resource, and the request context's keys."""

    action: str
    resource: str
    principal: dict[str, str]  # {"AWS": arn} or {"Service": "s3.amazonaws.com"}
    context: dict[str, str] = field(default_factory=dict)

    def value(self, key: str) -> str | None:
        return {name.lower(): value for name, value in self.context.items()}.get(key.lower())


def evaluate(policy: dict, request: Request) -> Decision:
    applicable = [statement for statement in _statements(policy) if applies(statement, request)]
    if any(statement["Effect"] == "Deny" for statement in applicable):
        return Decision.DENY
    if any(statement["Effect"] == "Allow" for statement in applicable):
        return Decision.ALLOW
    return Decision.IMPLICIT_DENY


def applies(statement: dict, request: Request) -> bool:
    """Does the statement cover this request (principal, action, resource) and does its condition hold?"""
    return (_principal_matches(statement, request.principal)
            and _element_matches(statement, "Action", request.action, _action_matches)
            and _element_matches(statement, "Resource", request.resource, wildcard)
            and condition_holds(statement.get("Condition", {}), request))


def condition_holds(condition: dict, request: Request) -> bool:
    return all(_operator_holds(operator, keys, request) for operator, keys in condition.items())


@cache
def _wildcard_regex(pattern: str) -> re.Pattern:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL)


def wildcard(value: str, pattern: str) -> bool:
    """IAM's wildcards: ``*`` any run of characters, ``?`` one; everything else literal (unlike fnmatch, no [...])."""
    return _wildcard_regex(pattern).fullmatch(value) is not None


_STRING = {"StringEquals": (False, lambda value, pattern: value == pattern),
           "StringNotEquals": (True, lambda value, pattern: value == pattern),
           "StringLike": (False, wildcard),
           "StringNotLike": (True, wildcard),
           "ArnEquals": (False, lambda value, pattern: _arn_matches(value, pattern)),
           "ArnLike": (False, lambda value, pattern: _arn_matches(value, pattern)),
           "ArnNotEquals": (True, lambda value, pattern: _arn_matches(value, pattern)),
           "ArnNotLike": (True, lambda value, pattern: _arn_matches(value, pattern)),
           "Bool": (False, lambda value, pattern: value.lower() == str(pattern).lower())}


def _operator_holds(operator: str, keys: dict, request: Request) -> bool:
    if operator == "Null":
        return all((request.value(key) is None) == (str(expected).lower() == "true") for key, expected in keys.items())
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    if base not in _STRING:
        raise NotImplementedError(f"the policy evaluator does not know the condition operator {operator}")
    negated, matches = _STRING[base]
    for key, expected in keys.items():
        value = request.value(key)
        if value is None:
            holds = if_exists or negated
        else:
            hit = any(matches(value, pattern) for pattern in _listed(expected))
            holds = not hit if negated else hit
        if not holds:
            return False
    return True


def _arn_matches(value: str, pattern: str) -> bool:
    values, patterns = value.split(":", 5), pattern.split(":", 5)
    return len(values) == len(patterns) == 6 and all(map(wildcard, values, patterns))


def _action_matches(action: str, pattern: str) -> bool:
    return wildcard(action.lower(), pattern.lower())


def _element_matches(statement: dict, element: str, value: str, matches) -> bool:
    if element in statement:
        return any(matches(value, pattern) for pattern in _listed(statement[element]))
    if f"Not{element}" in statement:
        return not any(matches(value, pattern) for pattern in _listed(statement[f"Not{element}"]))
    return True  # identity policies have no Principal, and a statement always has one of Action/NotAction


def _principal_matches(statement: dict, principal: dict[str, str]) -> bool:
    if "NotPrincipal" in statement:
        raise NotImplementedError("the policy evaluator does not evaluate NotPrincipal")
    if "Principal" not in statement:
        return True  # an identity policy: it applies to the identity it is attached to
    named = statement["Principal"]
    if named == "*" or named == {"AWS": "*"}:
        return True
    (kind, who), = principal.items()
    candidates = _listed(named.get(kind, []))
    if kind == "AWS":  # an account's root ARN names every principal of that account (IAM then decides)
        account = who.split(":")[4]
        return any(candidate in (who, account, f"arn:aws:iam::{account}:root") for candidate in candidates)
    return who in candidates


def _statements(policy: dict) -> list[dict]:
    return _listed(policy["Statement"])


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]
