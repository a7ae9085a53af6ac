"""``template.yaml`` read as data, with the few intrinsic functions LesionFlow uses resolved.

The local stack, the tests and the CLI take names, settings and wiring from here, so the template stays the single
source of truth. Physical names of resources (queue URLs, function ARNs) are supplied by the caller.
"""

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (``!Ref X`` -> ``{"Ref": "X"}``, ``!Sub`` -> ``{"Fn::Sub": ...}``)."""


def _tag(loader: yaml.Loader, suffix: str, node: yaml.Node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _tag)


@cache
def load(path: Path = TEMPLATE) -> dict:
    return yaml.load(path.read_text(), Loader=CfnLoader)


NO_VALUE = object()  # what Ref AWS::NoValue resolves to: the property (or list item) holding it is left out


@dataclass
class Resolver:
    """Resolves Ref, GetAtt, Sub, FindInMap, Select, Join and Split against parameter defaults and supplied names; a
    property set to ``Ref AWS::NoValue`` is left out, as CloudFormation leaves it out."""

    template: dict
    names: dict[str, str] = field(default_factory=dict)  # logical id -> physical name (what Ref returns)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)  # (logical id, attribute) -> value
    pseudo: dict[str, str] = field(default_factory=dict)  # AWS::Region, AWS::AccountId, ...
    parameters: dict[str, str] = field(default_factory=dict)  # overrides of parameter defaults

    def ref(self, name: str) -> str:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return str(self.parameters[name])
        if name in self.template.get("Parameters", {}):
            return str(self.template["Parameters"][name]["Default"])
        return self.names[name]

    def __call__(self, value):
        if isinstance(value, list):
            return [resolved for item in value if (resolved := self(item)) is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Ref", "Fn::")):
            return {key: resolved for key, inner in value.items() if (resolved := self(inner)) is not NO_VALUE}
        (function, argument), = value.items()
        if function == "Ref":
            return self.ref(argument)
        if function == "Fn::GetAtt":
            return self.attributes[tuple(argument)]
        if function == "Fn::FindInMap":
            mapping, top, second = self(argument)
            return self.template["Mappings"][mapping][top][second]
        if function == "Fn::Select":
            index, items = self(argument)
            return items[int(index)]
        if function == "Fn::Join":
            separator, items = self(argument)
            return separator.join(str(item) for item in items)
        if function == "Fn::Split":
            separator, text = self(argument)
            return text.split(separator)
        if function == "Fn::If":
            condition, when_true, when_false = argument
            return self(when_true if self.condition(condition) else when_false)
        if function == "Fn::Sub":
            text, local = (argument, {}) if isinstance(argument, str) else (argument[0], self(argument[1]))
            return re.sub(r"\$\{([^}]+)\}", lambda m: self._substitute(m.group(1), local), text)
        raise ValueError(f"the local stack does not resolve {function}")

    def condition(self, name: str) -> bool:
        """Evaluate one of the template's Conditions (Equals, Not, And, Or, and other Conditions)."""
        return self._truth(self.template["Conditions"][name])

    def _truth(self, expression) -> bool:
        (function, argument), = expression.items()
        if function == "Condition":
            return self.condition(argument)
        if function == "Fn::Equals":
            left, right = self(argument)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not self._truth(argument[0])
        if function == "Fn::And":
            return all(self._truth(item) for item in argument)
        if function == "Fn::Or":
            return any(self._truth(item) for item in argument)
        raise ValueError(f"the local stack does not evaluate the condition function {function}")

    def _substitute(self, name: str, local: dict) -> str:
        if name in local:
            return str(local[name])
        if "." in name and not name.startswith("AWS::"):
            return self.attributes[tuple(name.split(".", 1))]
        return self.ref(name)


class Placeholders(dict):
    """Physical names and attributes of resources, which only a deploy knows, as "<Logical.Attribute>": for reading
    what a deploy would set without deploying."""

    def __missing__(self, key) -> str:
        return "<" + (".".join(key) if isinstance(key, tuple) else key) + ">"


def placeholder_resolver(template: dict, region: str = "us-east-1", parameters: dict | None = None) -> Resolver:
    """A Resolver for the template as a deploy in ``region`` with ``parameters`` would see it, names as placeholders."""
    return Resolver(template, names=Placeholders(), attributes=Placeholders(), parameters=parameters or {}, pseudo={
        "AWS::Region": region, "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "lesionflow"})


def resources_of_type(template: dict, resource_type: str) -> dict[str, dict]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == resource_type}


def function_properties(template: dict, logical_id: str) -> dict:
    """A function's properties with ``Globals.Function`` merged in (environment variables merged key by key)."""
    defaults = template.get("Globals", {}).get("Function", {})
    own = template["Resources"][logical_id]["Properties"]
    merged = defaults | own
    variables = defaults.get("Environment", {}).get("Variables", {}) | own.get("Environment", {}).get("Variables", {})
    merged["Environment"] = {"Variables": variables}
    return merged
