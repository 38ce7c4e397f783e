#!/usr/bin/env python3
"""Render GOV.UK's AlertmanagerConfig Helm template and convert it to a plain alertmanager.yml,
the way prometheus-operator does, so that `amtool` can check and test GOV.UK's real route tree.

    python3 tests/govuk/am_convert.py --templates DIR --values FILE [--namespace NS] \
        [--namespaced OTHER.yaml ...] > alertmanager.yml

DIR holds alertmanagerconfig.yaml and the chart's _*.tpl files (deploy/govuk/vendor/ is a
verbatim copy from alphagov/govuk-helm-charts). FILE gives the Helm values the template reads.

Rendering. Helm is not packaged for Debian and CI cannot download its release binary, so this
renders the subset of Go text/template + Helm that the template uses: `{{- -}}` trimming,
comments, string and raw-string literals, `.Values.x`, `define`/`if`/`else`/`end`, and the
functions `include`, `nindent`, `indent`, `eq`, `ne`. Anything else is an error, never a guess: a
new construct in GOV.UK's template makes this fail loudly instead of rendering something else.
For GOV.UK's template, patched or not, the output is byte-identical to Go's text/template with
Helm's `include` and `nindent`.
YAML is read as Kubernetes reads it (sigs.k8s.io/yaml over go-yaml v2) where PyYAML differs.

Conversion, after prometheus-operator (pkg/alertmanager/amcfg.go and
pkg/apis/monitoring/v1alpha1/alertmanager_config_types.go, read at commit
6adcebc5076c34f4f55f8f5f7b1e528929373ac7; line numbers below are from there):
  - the global config (Alertmanager's spec.alertmanagerConfiguration, GOV.UK's case) becomes the
    root route, its routes get NO namespace matcher (initializeFromAlertmanagerConfig, :303-308);
  - every other AlertmanagerConfig (--namespaced) gets `namespace="<its namespace>"` appended to
    its top route's matchers and `continue: true` (namespaceEnforcer.processRoute :189,
    continueToNextRoute :122, the default OnNamespace strategy), and its route is put BEFORE
    the global routes (AddAlertmanagerConfigs :407);
  - receiver and time-interval names become "<namespace>/<name>/<receiver>" (makeNamespacedString
    :1778) for both kinds;
  - matchers with a matchType become `name<op>"value"` (Matcher.String, types :1436); without
    one, `name="value"` or, with regex, `name=~"value"` (convertMatchersV2 :1674);
  - camelCase fields become Alertmanager's snake_case (convertRoute :549, convertReceiver :604,
    convertWebhookConfig :885, convertSlackConfig :969, convertPagerdutyConfig :1075,
    convertHTTPConfig :1832, convertMuteTimeInterval :1706, convertInhibitRule :1659);
  - Secret references become placeholders (the operator reads the Secret's value), URLs where
    the operator demands a URL.
Unknown fields are errors (ChildRoutes decodes routes with DisallowUnknownFields, types :172).
"""

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

try:
    import yaml
except ImportError:  # CI has Python only: fetch PyYAML from PyPI once.
    subprocess.check_call(
        [sys.executable, "-m", "pip", "install", "--quiet", "--root-user-action=ignore", "PyYAML"]
    )
    import yaml


# ---------------------------------------------------------------------------------------------
# A minimal Go text/template + Helm renderer.


class TemplateError(Exception):
    pass


def _scan_action(src, start):
    """Return (body, end) for the action whose `{{` is at start; end is just past `}}`.
    Strings, raw strings and comments may contain `}}`, so they are skipped whole."""
    i = start + 2
    while i < len(src):
        c = src[i]
        if src.startswith("}}", i):
            return src[start + 2 : i], i + 2
        if c == '"':
            i += 1
            while src[i] != '"':
                i += 2 if src[i] == "\\" else 1
        elif c == "`":
            i = src.index("`", i + 1)
        elif src.startswith("/*", i):
            i = src.index("*/", i + 2) + 1
        i += 1
    raise TemplateError(f"unclosed action at offset {start}")


def lex(src):
    """Text and action tokens, with Go's trim markers applied: `{{- ` trims the whitespace
    before, ` -}}` the whitespace after."""
    tokens = []
    pos = 0
    trim_next = False
    while True:
        start = src.find("{{", pos)
        text = src[pos:] if start < 0 else src[pos:start]
        if trim_next:
            text = text.lstrip(" \t\r\n")
        if start < 0:
            tokens.append(("text", text))
            return tokens
        body, pos = _scan_action(src, start)
        if re.match(r"-[ \t\r\n]", body):
            text = text.rstrip(" \t\r\n")
            body = body[2:]
        trim_next = bool(re.search(r"[ \t\r\n]-$", body))
        if trim_next:
            body = body[:-2]
        tokens.append(("text", text))
        tokens.append(("action", body.strip()))


def _split_words(expr):
    """Words of a pipeline command: literals kept whole, `|` a word of its own."""
    words, i = [], 0
    while i < len(expr):
        c = expr[i]
        if c in " \t\r\n":
            i += 1
        elif c == "|":
            words.append("|")
            i += 1
        elif c == '"':
            j = i + 1
            while expr[j] != '"':
                j += 2 if expr[j] == "\\" else 1
            words.append(expr[i : j + 1])
            i = j + 1
        elif c == "`":
            j = expr.index("`", i + 1)
            words.append(expr[i : j + 1])
            i = j + 1
        else:
            m = re.match(r"[^\s|]+", expr[i:])
            words.append(m.group(0))
            i += len(m.group(0))
    return words


def parse(tokens):
    """A tree of ("text", s) / ("out", pipeline) / ("if", pipeline, then, else_) nodes;
    defines are collected apart."""
    defines = {}

    def block(it, stop):
        nodes = []
        for kind, val in it:
            if kind == "text":
                if val:
                    nodes.append(("text", val))
                continue
            if val.startswith("/*") and val.endswith("*/"):
                continue
            head = val.split(None, 1)[0] if val else ""
            if head in stop:
                if val not in ("end", "else"):
                    raise TemplateError(f"unsupported action {{{{ {val} }}}}")
                return nodes, head
            if head == "define":
                name = json.loads(val.split(None, 1)[1])
                defines[name], _ = block(it, {"end"})
            elif head == "if":
                then, ended = block(it, {"end", "else"})
                else_ = block(it, {"end"})[0] if ended == "else" else []
                nodes.append(("if", val[2:].strip(), then, else_))
            elif head in ("range", "with", "template", "block") or re.match(r"\$\w*\s*:?=", val):
                raise TemplateError(f"unsupported action {{{{ {val} }}}}")
            else:
                nodes.append(("out", val))
        if stop:
            raise TemplateError(f"missing {{{{ end }}}} (expected one of {sorted(stop)})")
        return nodes, None

    nodes, _ = block(iter(tokens), set())
    return nodes, defines


class Renderer:
    def __init__(self, defines):
        self.defines = defines

    def render(self, nodes, dot):
        out = []
        for node in nodes:
            if node[0] == "text":
                out.append(node[1])
            elif node[0] == "out":
                out.append(self._str(self.pipeline(node[1], dot)))
            else:
                _, cond, then, else_ = node
                out.append(self.render(then if self._truth(self.pipeline(cond, dot)) else else_, dot))
        return "".join(out)

    @staticmethod
    def _str(v):
        if v is None:
            raise TemplateError("a value the template prints is missing from the values file")
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v)

    @staticmethod
    def _truth(v):
        return bool(v)

    def pipeline(self, expr, dot):
        words = _split_words(expr)
        commands, cur = [], []
        for w in words:
            if w == "|":
                commands.append(cur)
                cur = []
            else:
                cur.append(w)
        commands.append(cur)
        value, piped = None, False
        for cmd in commands:
            args = [self.operand(w, dot) for w in cmd[1:]]
            if piped:
                args.append(value)
            if self._is_function(cmd[0]):
                value = self.call(cmd[0], args, dot)
            elif len(cmd) == 1 and not piped:
                value = self.operand(cmd[0], dot)
            else:
                raise TemplateError(f"cannot evaluate {expr!r}")
            piped = True
        return value

    @staticmethod
    def _is_function(word):
        return re.fullmatch(r"[A-Za-z_]\w*", word) is not None and word not in ("true", "false")

    def operand(self, word, dot):
        if word.startswith('"'):
            return json.loads(word)
        if word.startswith("`"):
            return word[1:-1]
        if word == ".":
            return dot
        if word in ("true", "false"):
            return word == "true"
        if re.fullmatch(r"-?\d+", word):
            return int(word)
        if word.startswith("."):
            value = dot
            for field in word[1:].split("."):
                if not isinstance(value, dict) or field not in value:
                    raise TemplateError(f"{word} is not in the values given")
                value = value[field]
            return value
        raise TemplateError(f"unsupported operand {word!r}")

    def call(self, name, args, dot):
        if name == "include":
            template, data = args
            if template not in self.defines:
                raise TemplateError(f"no template named {template!r}")
            return self.render(self.defines[template], data)
        if name in ("indent", "nindent"):
            # Sprig: every line, empty ones too, gets the pad.
            width, text = args
            pad = " " * width
            indented = pad + text.replace("\n", "\n" + pad)
            return "\n" + indented if name == "nindent" else indented
        if name in ("eq", "ne"):
            a, b = args
            return (a == b) if name == "eq" else (a != b)
        raise TemplateError(f"unsupported function {name!r}")


def render_chart_template(templates_dir, template_name, values):
    """Helm: every file of templates/ contributes its defines; the named one is rendered."""
    defines = {}
    for tpl in sorted(Path(templates_dir).glob("_*.tpl")):
        defines.update(parse(lex(tpl.read_text()))[1])
    nodes, own = parse(lex((Path(templates_dir) / template_name).read_text()))
    defines.update(own)
    return Renderer(defines).render(nodes, {"Values": values})


# ---------------------------------------------------------------------------------------------
# YAML as Kubernetes reads it (sigs.k8s.io/yaml, over go-yaml v2), where it differs from PyYAML.


class GoYamlLoader(yaml.SafeLoader):
    pass


# `=` is a plain string to go-yaml; PyYAML takes it for YAML 1.1's "value" key.
GoYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:value"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _local_tag(loader, _suffix, node):
    # go-yaml keeps a scalar with a tag it does not know as its plain text: so an unquoted
    # `matchType: !=` (the tag `!=` on an empty scalar) reaches the API server as "".
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    raise yaml.constructor.ConstructorError(None, None, f"unsupported tag {node.tag}", node.start_mark)


GoYamlLoader.add_multi_constructor("!", _local_tag)


def load_all(text):
    return [d for d in yaml.load_all(text, Loader=GoYamlLoader) if d]


# ---------------------------------------------------------------------------------------------
# AlertmanagerConfig (v1alpha1) -> alertmanager.yml, after prometheus-operator.

MATCH_TYPES = ("=", "!=", "=~", "!~")


def _check_keys(obj, allowed, where):
    unknown = set(obj) - set(allowed)
    if unknown:
        raise ValueError(f"{where}: fields this converter does not map: {sorted(unknown)}")


def _escape(value):
    # openMetricsEscape (alertmanager_config_types.go:1497).
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def convert_matcher(m, where):
    _check_keys(m, ("name", "value", "matchType", "regex"), where)
    # An empty matchType falls back to regex/equality (convertMatchersV2 :1681-1693).
    op = m.get("matchType") or ("=~" if m.get("regex") else "=")
    if op not in MATCH_TYPES:
        raise ValueError(f"{where}: matchType {op!r} is not one of {MATCH_TYPES}")
    return f'{m["name"]}{op}"{_escape(str(m.get("value", "")))}"'


def namespaced(name, key):
    return f"{key[0]}/{key[1]}/{name}" if name else ""


def convert_route(r, key, where="route"):
    _check_keys(
        r,
        ("receiver", "groupBy", "groupWait", "groupInterval", "repeatInterval", "matchers",
         "continue", "routes", "muteTimeIntervals", "activeTimeIntervals"),
        where,
    )
    out = {}
    if r.get("receiver"):
        out["receiver"] = namespaced(r["receiver"], key)
    if r.get("groupBy"):
        out["group_by"] = list(r["groupBy"])
    matchers = [convert_matcher(m, f"{where}.matchers") for m in r.get("matchers") or []]
    if matchers:
        out["matchers"] = matchers
    if r.get("continue"):
        out["continue"] = True
    routes = [convert_route(c, key, f"{where}.routes[{i}]") for i, c in enumerate(r.get("routes") or [])]
    if routes:
        out["routes"] = routes
    for camel, snake in (("groupWait", "group_wait"), ("groupInterval", "group_interval"),
                         ("repeatInterval", "repeat_interval")):
        if r.get(camel):
            out[snake] = str(r[camel])
    for camel, snake in (("muteTimeIntervals", "mute_time_intervals"),
                         ("activeTimeIntervals", "active_time_intervals")):
        if r.get(camel):
            out[snake] = [namespaced(n, key) for n in r[camel]]
    return out


def secret_placeholder(selector, as_url=False):
    """The operator reads the Secret's value; here only its shape matters."""
    ref = f'{selector["name"]}/{selector["key"]}'
    return f"https://secret.invalid/{ref}" if as_url else f"<secret {ref}>"


def convert_http_config(h, where):
    _check_keys(h, ("authorization", "followRedirects", "enableHttp2"), where)
    out = {}
    if "authorization" in h:
        a = h["authorization"]
        _check_keys(a, ("type", "credentials"), f"{where}.authorization")
        # convertHTTPConfig :1879: no credentials, no authorization at all; Bearer by default.
        out["authorization"] = {
            "type": a.get("type") or "Bearer",
            "credentials": secret_placeholder(a["credentials"]),
        }
    if "followRedirects" in h:
        out["follow_redirects"] = h["followRedirects"]
    if "enableHttp2" in h:
        out["enable_http2"] = h["enableHttp2"]
    return out


def convert_webhook(w, where):
    _check_keys(w, ("url", "urlSecret", "sendResolved", "maxAlerts", "httpConfig", "timeout"), where)
    out = {}
    if "sendResolved" in w:
        out["send_resolved"] = w["sendResolved"]
    out["url"] = secret_placeholder(w["urlSecret"], True) if "urlSecret" in w else w["url"]
    if "httpConfig" in w:
        out["http_config"] = convert_http_config(w["httpConfig"], f"{where}.httpConfig")
    if w.get("maxAlerts", 0) > 0:  # convertWebhookConfig :908: 0 (all alerts) is left out.
        out["max_alerts"] = w["maxAlerts"]
    if w.get("timeout"):
        out["timeout"] = w["timeout"]
    return out


SLACK_STRINGS = {
    "channel": "channel", "username": "username", "color": "color", "title": "title",
    "titleLink": "title_link", "pretext": "pretext", "text": "text", "footer": "footer",
    "fallback": "fallback", "callbackId": "callback_id", "iconEmoji": "icon_emoji",
    "iconURL": "icon_url", "imageURL": "image_url", "thumbURL": "thumb_url",
}


def convert_slack(s, where):
    _check_keys(s, (*SLACK_STRINGS, "sendResolved", "apiURL", "fields", "shortFields", "linkNames"),
                where)
    out = {}
    if "sendResolved" in s:
        out["send_resolved"] = s["sendResolved"]
    if "apiURL" in s:  # getValidURLFromSecret: the Secret must hold a URL.
        out["api_url"] = secret_placeholder(s["apiURL"], True)
    for camel, snake in SLACK_STRINGS.items():
        if s.get(camel):
            out[snake] = s[camel]
    for camel, snake in (("shortFields", "short_fields"), ("linkNames", "link_names")):
        if s.get(camel):
            out[snake] = True
    fields = []
    for i, f in enumerate(s.get("fields") or []):
        _check_keys(f, ("title", "value", "short"), f"{where}.fields[{i}]")
        field = {"title": f["title"], "value": f["value"]}
        if "short" in f:
            field["short"] = f["short"]
        fields.append(field)
    if fields:
        out["fields"] = fields
    return out


def convert_pagerduty(p, where):
    _check_keys(p, ("routingKey", "serviceKey", "sendResolved", "clientURL", "client",
                    "description", "severity", "class", "component", "group", "url"), where)
    out = {}
    if "sendResolved" in p:
        out["send_resolved"] = p["sendResolved"]
    if "routingKey" in p:
        out["routing_key"] = secret_placeholder(p["routingKey"])
    if "serviceKey" in p:
        out["service_key"] = secret_placeholder(p["serviceKey"])
    for camel, snake in (("clientURL", "client_url"), ("client", "client"),
                         ("description", "description"), ("severity", "severity"),
                         ("class", "class"), ("component", "component"), ("group", "group"),
                         ("url", "url")):
        if p.get(camel):
            out[snake] = p[camel]
    return out


RECEIVER_KINDS = {
    "webhookConfigs": ("webhook_configs", convert_webhook),
    "slackConfigs": ("slack_configs", convert_slack),
    "pagerdutyConfigs": ("pagerduty_configs", convert_pagerduty),
}


def convert_receiver(r, key):
    where = f"receiver {r.get('name')!r}"
    _check_keys(r, ("name", *RECEIVER_KINDS), where)
    out = {"name": namespaced(r["name"], key)}
    for camel, (snake, fn) in RECEIVER_KINDS.items():
        if r.get(camel):
            out[snake] = [fn(c, f"{where}.{camel}[{i}]") for i, c in enumerate(r[camel])]
    return out


def convert_time_interval(ti, key):
    _check_keys(ti, ("name", "timeIntervals"), f"muteTimeInterval {ti.get('name')!r}")
    intervals = []
    for t in ti.get("timeIntervals") or []:
        _check_keys(t, ("times", "weekdays", "daysOfMonth", "months", "years"), "timeIntervals")
        out = {}
        if t.get("times"):
            out["times"] = [{"start_time": x["startTime"], "end_time": x["endTime"]} for x in t["times"]]
        if t.get("weekdays"):
            out["weekdays"] = list(t["weekdays"])
        if t.get("daysOfMonth"):
            out["days_of_month"] = [f'{d["start"]}:{d["end"]}' for d in t["daysOfMonth"]]
        for camel, snake in (("months", "months"), ("years", "years")):
            if t.get(camel):
                out[snake] = list(t[camel])
        intervals.append(out)
    return {"name": namespaced(ti["name"], key), "time_intervals": intervals}


def convert_inhibit_rule(ir):
    _check_keys(ir, ("sourceMatch", "targetMatch", "equal"), "inhibitRule")
    out = {}
    for camel, snake in (("targetMatch", "target_matchers"), ("sourceMatch", "source_matchers")):
        if ir.get(camel):
            out[snake] = [convert_matcher(m, f"inhibitRule.{camel}") for m in ir[camel]]
    if ir.get("equal"):
        out["equal"] = list(ir["equal"])
    return out


def _key(doc, default_namespace):
    meta = doc["metadata"]
    return (meta.get("namespace") or default_namespace, meta["name"])


def _spec(doc):
    if doc.get("kind") != "AlertmanagerConfig":
        raise ValueError(f"not an AlertmanagerConfig: {doc.get('kind')!r}")
    spec = doc["spec"]
    _check_keys(spec, ("route", "receivers", "inhibitRules", "muteTimeIntervals"), "spec")
    return spec


def convert_global(doc, namespace):
    """initializeFromAlertmanagerConfig: the global config, no namespace matcher anywhere."""
    key = _key(doc, namespace)
    spec = _spec(doc)
    route = convert_route(spec["route"], key)
    # checkAlertmanagerConfigRootRoute (:73).
    for banned in ("continue", "matchers", "mute_time_intervals", "active_time_intervals"):
        if banned in route:
            raise ValueError(f"the root route may not have {banned}")
    cfg = {"route": route}
    if spec.get("inhibitRules"):
        cfg["inhibit_rules"] = [convert_inhibit_rule(ir) for ir in spec["inhibitRules"]]
    cfg["receivers"] = [convert_receiver(r, key) for r in spec.get("receivers") or []]
    if spec.get("muteTimeIntervals"):
        cfg["mute_time_intervals"] = [convert_time_interval(t, key) for t in spec["muteTimeIntervals"]]
    cfg["templates"] = []
    return cfg


def add_namespaced(cfg, docs, namespace):
    """AddAlertmanagerConfigs with the default OnNamespace strategy: each config's route gets
    its namespace matcher and continue, and all of them go before the global routes."""
    sub_routes = []
    for doc in sorted(docs, key=lambda d: "/".join(_key(d, namespace))):
        key = _key(doc, namespace)
        spec = _spec(doc)
        for ir in spec.get("inhibitRules") or []:
            rule = convert_inhibit_rule(ir)
            ns = f'namespace="{key[0]}"'
            for side in ("source_matchers", "target_matchers"):
                rule.setdefault(side, [])
                if ns not in rule[side]:
                    rule[side].append(ns)
            cfg.setdefault("inhibit_rules", []).append(rule)
        if not spec.get("route"):
            continue
        route = convert_route(spec["route"], key)
        route.setdefault("matchers", []).append(f'namespace="{key[0]}"')
        route["continue"] = True
        sub_routes.append(route)
        cfg["receivers"] += [convert_receiver(r, key) for r in spec.get("receivers") or []]
        if spec.get("muteTimeIntervals"):
            cfg.setdefault("mute_time_intervals", []).extend(
                convert_time_interval(t, key) for t in spec["muteTimeIntervals"])
    cfg["route"]["routes"] = sub_routes + cfg["route"].get("routes", [])
    return cfg


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--templates", required=True, help="folder with alertmanagerconfig.yaml and _*.tpl")
    ap.add_argument("--template", default="alertmanagerconfig.yaml")
    ap.add_argument("--values", required=True, help="YAML file of the Helm values the template reads")
    ap.add_argument("--namespace", help="the AlertmanagerConfig's namespace (default: monitoringNamespace)")
    ap.add_argument("--namespaced", nargs="*", default=[], metavar="FILE",
                    help="other (namespaced) AlertmanagerConfigs, converted as the operator does")
    ap.add_argument("--rendered", metavar="FILE", help="also write the rendered template here")
    args = ap.parse_args()

    values = yaml.safe_load(Path(args.values).read_text())
    namespace = args.namespace or values["monitoringNamespace"]
    text = render_chart_template(args.templates, args.template, values)
    if args.rendered:
        Path(args.rendered).write_text(text)
    docs = load_all(text)
    if len(docs) != 1:
        raise SystemExit(f"expected one AlertmanagerConfig from {args.template}, got {len(docs)}")
    cfg = convert_global(docs[0], namespace)
    others = [d for f in args.namespaced for d in load_all(Path(f).read_text())]
    if others:
        add_namespaced(cfg, others, namespace)
    yaml.safe_dump(cfg, sys.stdout, sort_keys=False, width=100, allow_unicode=True)


if __name__ == "__main__":
    main()
