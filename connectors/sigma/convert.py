#!/usr/bin/env python3
"""Build the SIEM content packs from the Sigma export of the rule pack.

Run by .ci/content-packs.sh inside the pinned pySigma venv:

    convert.py --export DIR --connectors DIR

DIR of --export is what `aiwarden rules export --format sigma` wrote (rules/, pipelines/).
Everything this writes under --connectors is generated and committed; CI writes it again into
a copy and fails on any difference, so the packs cannot fall behind the rules.

Per SIEM, each Sigma rule (a detection rule, or each correlation rule of a threshold) is
converted with the SIEM's processing pipeline. Where the backend cannot convert a rule (the
Kusto backend has no correlations, no backend has `value_sum`, Lucene has no field references),
the pack uses the hand-written query `<siem>/handwritten/<sigma name>.<ext>`, and says so; a
missing one is an error. Elastic uses Lucene for single-event rules (Lucene matches any item of
a multi-valued field, where ES|QL's `==` is null on one) and ES|QL for correlations.
"""

import argparse
import json
import sys
import uuid
from pathlib import Path

from sigma.backends.elasticsearch import ESQLBackend, LuceneBackend
from sigma.backends.kusto import KustoBackend
from sigma.backends.splunk import SplunkBackend
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaConversionError, SigmaFeatureNotSupportedByBackendError
from sigma.processing.pipeline import ProcessingPipeline

# ATLAS techniques of the rule pack and the tactics they serve (atlas.mitre.org; the tactic
# names mirror ATT&CK's, which is what Sentinel's `tactics` accepts).
ATLAS = {
    "AML.T0034": ("Cost Harvesting", [("AML.TA0011", "Impact")]),
    "AML.T0051": ("LLM Prompt Injection", [("AML.TA0004", "Initial Access"), ("AML.TA0005", "Execution")]),
    "AML.T0053": ("LLM Plugin Compromise", [("AML.TA0005", "Execution"), ("AML.TA0012", "Privilege Escalation")]),
    "AML.T0054": ("LLM Jailbreak", [("AML.TA0012", "Privilege Escalation"), ("AML.TA0007", "Defense Evasion")]),
    "AML.T0056": ("Extract LLM System Prompt", [("AML.TA0010", "Exfiltration")]),
    "AML.T0057": ("LLM Data Leakage", [("AML.TA0010", "Exfiltration")]),
}
RISK = {"low": 21, "medium": 47, "high": 73, "critical": 99}
SPLUNK_SEVERITY = {"informational": 2, "low": 3, "medium": 4, "high": 5, "critical": 6}
SENTINEL_SEVERITY = {"informational": "Informational", "low": "Low", "medium": "Medium", "high": "High", "critical": "High"}
NAMESPACE = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")  # RFC 4122 URL namespace
EXTENSIONS = {"splunk": "spl", "esql": "esql", "lucene": "lucene", "kusto": "kql"}


def fail(message):
    print(f"convert.py: error: {message}", file=sys.stderr)
    sys.exit(1)


def timespan_minutes(text):
    units = {"s": 1 / 60, "m": 1, "h": 60, "d": 1440}
    return max(1, int(int(text[:-1]) * units[text[-1]]))


def iso_duration(minutes):
    if minutes % 1440 == 0:
        return f"P{minutes // 1440}D"
    if minutes % 60 == 0:
        return f"PT{minutes // 60}H"
    return f"PT{minutes}M"


def load_rules(export):
    """Every Sigma rule that a SIEM runs: detection rules no correlation uses, and correlations."""
    out = []
    for path in sorted((export / "rules").glob("*.yml")):
        text = path.read_text()
        documents = text.split("---\n")
        collection = SigmaCollection.from_yaml(text)
        bases = set()
        for rule in collection.rules:
            if isinstance(rule, SigmaCorrelationRule):
                bases.update(str(ref.reference) for ref in rule.rules)
        for index, rule in enumerate(collection.rules):
            if not isinstance(rule, SigmaCorrelationRule) and rule.name in bases:
                continue
            if isinstance(rule, SigmaCorrelationRule):
                # The correlation with only its own base rule, so each converts on its own.
                base_text = [d for d in documents if any(f'name: "{b}"' in d for b in map(str, (r.reference for r in rule.rules)))]
                source = "---\n".join(base_text + [documents[index]])
                group_by = list(rule.group_by or [])
                span = str(rule.timespan.spec) if rule.timespan else "15m"
            else:
                source = documents[index]
                group_by = [f for f in (rule.fields or [])][:1]
                span = "15m"
            out.append({
                "name": rule.name,
                "id": str(rule.id),
                "title": rule.title,
                "description": rule.description,
                "level": str(rule.level.name).lower() if rule.level else "medium",
                "atlas": [t.name.upper() for t in rule.tags if t.namespace == "atlas"],
                "tags": [f"{t.namespace}.{t.name}" for t in rule.tags],
                "correlation": isinstance(rule, SigmaCorrelationRule),
                "group_by": group_by,
                "timespan": span,
                "file": path.name,
                "source": source,
            })
    return out


def convert(rule, backend, target, connectors, siem):
    """The query and how it was made: (query, language, origin)."""
    try:
        if siem == "elastic" and "|re" in rule["source"]:
            # Lucene and ES|QL regular expressions match the whole value and know no (?i);
            # Sigma's search anywhere in it, so a converted query would silently miss.
            raise SigmaFeatureNotSupportedByBackendError(
                "Elasticsearch regular expressions are anchored and have no (?i)")
        queries = backend.convert(SigmaCollection.from_yaml(rule["source"]))
        if len(queries) != 1:
            raise SigmaConversionError(f"{len(queries)} queries for one rule")
        query = " ".join(line.strip() for line in queries[0].splitlines() if line.strip())
        return query, target, "generated"
    except (SigmaFeatureNotSupportedByBackendError, SigmaConversionError, NotImplementedError) as error:
        reason = str(error).split(" (while")[0].strip().rstrip(".")
        path = connectors / siem / "handwritten" / f"{rule['name']}.{EXTENSIONS[target]}"
        if not path.exists():
            raise SystemExit(
                f"convert.py: error: {target} cannot convert {rule['name']} ({reason}) and "
                f"{path} does not exist: write it by hand") from None
        return path.read_text().strip(), target, f"hand-written ({reason})"


def splunk_pack(rules, connectors):
    lines = [
        "# Generated by connectors/sigma/convert.py from connectors/sigma/rules: do not edit.",
        "# Scheduled alerts of the aiwarden detections (SPL converted by pySigma, or hand-written",
        "# where the backend cannot convert a rule; see connectors/sigma/conversions.json).",
        "",
    ]
    for rule in rules:
        spl = rule["siem"]["splunk"]["query"]
        minutes = timespan_minutes(rule["timespan"])
        lookback = max(15, 2 * minutes)
        suppress = rule["group_by"] or ["user_id"]
        lines += [
            f"[aiwarden - {rule['title']}]",
            f"description = {rule['description']} Origin: {rule['siem']['splunk']['origin']}.",
            f"search = `aiwarden_index` {spl}",
            "cron_schedule = */5 * * * *",
            "enableSched = 1",
            f"dispatch.earliest_time = -{lookback}m@m",
            "dispatch.latest_time = now",
            "counttype = number of events",
            "relation = greater than",
            "quantity = 0",
            "alert.track = 1",
            f"alert.severity = {SPLUNK_SEVERITY.get(rule['level'], 4)}",
            "alert.suppress = 1",
            f"alert.suppress.fields = {','.join(f.replace('{}', '') for f in suppress)}",
            f"alert.suppress.period = {max(minutes, 5)}m",
            "",
        ]
    (connectors / "splunk/default/savedsearches.conf").write_text("\n".join(lines))


def threat(atlas_ids):
    entries = []
    for technique in atlas_ids:
        name, tactics = ATLAS.get(technique, (technique, []))
        for tactic_id, tactic_name in tactics:
            entries.append({
                "framework": "MITRE ATLAS",
                "tactic": {"id": tactic_id, "name": tactic_name,
                           "reference": f"https://atlas.mitre.org/tactics/{tactic_id}"},
                "technique": [{"id": technique, "name": name,
                               "reference": f"https://atlas.mitre.org/techniques/{technique}"}],
            })
    return entries


def elastic_pack(rules, connectors):
    out = []
    for rule in rules:
        conversion = rule["siem"]["elastic"]
        minutes = timespan_minutes(rule["timespan"])
        document = {
            "rule_id": rule["id"],
            "name": f"aiwarden: {rule['title']}",
            "description": f"{rule['description']} Origin: {conversion['origin']}.",
            "risk_score": RISK.get(rule["level"], 47),
            "severity": rule["level"] if rule["level"] in RISK else "medium",
            "type": "esql" if conversion["language"] == "esql" else "query",
            "language": conversion["language"],
            "query": conversion["query"],
            "interval": "5m",
            "from": f"now-{max(minutes, 5) + 5}m",
            "to": "now",
            "enabled": True,
            "max_signals": 100,
            "author": ["aiwarden"],
            "license": "Apache-2.0",
            "tags": ["aiwarden"] + rule["tags"],
            "threat": threat(rule["atlas"]),
            "version": 1,
        }
        if document["type"] == "query":
            document["index"] = ["logs-aiwarden.events-*"]
        out.append(json.dumps(document, sort_keys=True))
    (connectors / "elastic/detection_rules/aiwarden.ndjson").write_text("\n".join(out) + "\n")


def sentinel_tactics(atlas_ids):
    names = []
    for technique in atlas_ids:
        for _, tactic in ATLAS.get(technique, ("", []))[1]:
            compact = tactic.replace(" ", "")
            if compact not in names:
                names.append(compact)
    return names


def sentinel_resources(rules, connectors):
    workspace = "[concat(parameters('workspaceName'), '/Microsoft.SecurityInsights/{}')]"
    tables = ["[resourceId('Microsoft.OperationalInsights/workspaces/tables', parameters('workspaceName'), 'AIWardenEvents_CL')]",
              "[resourceId('Microsoft.OperationalInsights/workspaces/tables', parameters('workspaceName'), 'AIWardenAlerts_CL')]"]
    resources = []
    for rule in rules:
        conversion = rule["siem"]["sentinel"]
        minutes = timespan_minutes(rule["timespan"])
        # Entities need columns: single-event rules see the event's; correlations project them.
        mappings = [{"entityType": "Account", "fieldMappings": [{"identifier": "FullName", "columnName": "UserId"}]}]
        if "IpAddress" in conversion["query"] or not rule["correlation"]:
            mappings.append({"entityType": "IP", "fieldMappings": [{"identifier": "Address", "columnName": "IpAddress"}]})
        resources.append({
            "type": "Microsoft.OperationalInsights/workspaces/providers/alertRules",
            "apiVersion": "2023-02-01",
            "name": workspace.format(rule["id"]),
            "kind": "Scheduled",
            "dependsOn": tables,
            "properties": {
                "displayName": f"aiwarden: {rule['title']}",
                "description": f"{rule['description']} Origin: {conversion['origin']}. ATLAS: {', '.join(rule['atlas']) or 'none'}.",
                "severity": SENTINEL_SEVERITY.get(rule["level"], "Medium"),
                "enabled": True,
                "query": conversion["query"],
                "queryFrequency": "PT5M",
                "queryPeriod": iso_duration(max(minutes, 5) + 5),
                "triggerOperator": "GreaterThan",
                "triggerThreshold": 0,
                "suppressionDuration": iso_duration(max(minutes, 5)),
                "suppressionEnabled": False,
                "tactics": sentinel_tactics(rule["atlas"]),
                "entityMappings": mappings,
            },
        })
    for path in sorted((connectors / "sentinel/hunting").glob("*.kql")):
        text = path.read_text()
        header = [line[2:].strip() for line in text.splitlines() if line.startswith("//")]
        meta = dict(h.split(": ", 1) for h in header if ": " in h)
        query = "\n".join(line for line in text.splitlines() if not line.startswith("//")).strip()
        resources.append({
            "type": "Microsoft.OperationalInsights/workspaces/savedSearches",
            "apiVersion": "2020-08-01",
            "name": f"[concat(parameters('workspaceName'), '/aiwarden-hunting-{path.stem}')]",
            "dependsOn": tables,
            "properties": {
                "category": "Hunting Queries",
                "displayName": f"aiwarden: {meta.get('title', path.stem)}",
                "query": query,
                "version": 2,
                "tags": [{"name": "description", "value": meta.get("description", "")},
                         {"name": "tactics", "value": meta.get("tactics", "")}],
            },
        })
    return resources


def governance(connectors):
    spec = json.loads((connectors / "governance/panels.json").read_text())
    # Splunk Simple XML dashboard.
    xml = [f'<dashboard version="1.1" theme="light">', f"  <label>{spec['title']}</label>",
           f"  <description>{escape(spec['description'])}</description>"]
    for panel in spec["panels"]:
        chart = panel["chart"]
        element = "table" if chart == "table" else "chart"
        xml += ["  <row>", "    <panel>", f"      <title>{escape(panel['title'])}</title>",
                f"      <{element}>", "        <search>",
                f"          <query>{escape(panel['splunk'])}</query>",
                "          <earliest>-7d@d</earliest>", "          <latest>now</latest>",
                "        </search>"]
        if element == "chart":
            xml.append(f'        <option name="charting.chart">{chart}</option>')
        xml += [f"      </{element}>", "    </panel>", "  </row>"]
    xml.append("</dashboard>")
    views = connectors / "splunk/default/data/ui/views"
    views.mkdir(parents=True, exist_ok=True)
    (views / "aiwarden_governance.xml").write_text("\n".join(xml) + "\n")

    # Kibana saved objects: a data view per stream, one ES|QL Discover session per panel, and
    # the dashboard that shows them.
    objects = []
    for stream in ["events", "alerts"]:
        objects.append({"type": "index-pattern", "id": f"aiwarden-{stream}",
                        "attributes": {"title": f"logs-aiwarden.{stream}-*", "timeFieldName": "@timestamp",
                                       "name": f"aiwarden {stream}"},
                        "references": []})
    panels_json, references = [], []
    for index, panel in enumerate(spec["panels"]):
        search_id = f"aiwarden-governance-{panel['id']}"
        objects.append({"type": "search", "id": search_id,
                        "attributes": {"title": panel["title"], "isTextBasedQuery": True,
                                       "columns": [], "sort": [],
                                       "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(
                                           {"query": {"esql": panel["elastic"]}, "filter": []})}},
                        "references": []})
        ref = f"panel_{index}"
        panels_json.append({"panelIndex": str(index), "type": "search", "panelRefName": ref,
                            "gridData": {"x": 24 * (index % 2), "y": 15 * (index // 2), "w": 24, "h": 15, "i": str(index)},
                            "embeddableConfig": {}})
        references.append({"type": "search", "id": search_id, "name": ref})
    objects.append({"type": "dashboard", "id": "aiwarden-governance",
                    "attributes": {"title": spec["title"], "description": spec["description"],
                                   "panelsJSON": json.dumps(panels_json), "timeRestore": True,
                                   "timeFrom": "now-7d", "timeTo": "now",
                                   "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps({"query": {"query": "", "language": "kuery"}, "filter": []})}},
                    "references": references})
    saved = connectors / "elastic/kibana"
    saved.mkdir(parents=True, exist_ok=True)
    (saved / "aiwarden.ndjson").write_text("\n".join(json.dumps(o, sort_keys=True) for o in objects) + "\n")

    # Sentinel workbook (a Notebook/1.0 document of KQL items).
    items = [{"type": 1, "content": {"json": f"## {spec['title']}\n{spec['description']}"}, "name": "intro"}]
    for panel in spec["panels"]:
        visualization = {"column": "barchart", "bar": "barchart", "pie": "piechart", "table": "table"}[panel["chart"]]
        items.append({"type": 3, "name": panel["id"], "content": {
            "version": "KqlItem/1.0", "query": panel["sentinel"], "size": 0, "title": panel["title"],
            "timeContext": {"durationMs": 604800000}, "queryType": 0,
            "resourceType": "microsoft.operationalinsights/workspaces", "visualization": visualization}})
    workbook = {"version": "Notebook/1.0", "items": items,
                "$schema": "https://github.com/Microsoft/Application-Insights-Workbooks/blob/master/schema/workbook.json"}
    (connectors / "sentinel/workbook.json").write_text(json.dumps(workbook, indent=2) + "\n")
    return {
        "type": "Microsoft.Insights/workbooks",
        "apiVersion": "2022-04-01",
        "name": str(uuid.uuid5(NAMESPACE, "https://aiwarden.invalid/sentinel/workbook")),
        "location": "[parameters('location')]",
        "kind": "shared",
        "properties": {
            "displayName": spec["title"],
            "category": "sentinel",
            "sourceId": "[variables('workspaceResourceId')]",
            "serializedData": json.dumps(workbook),
        },
    }


def escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", type=Path, required=True)
    parser.add_argument("--connectors", type=Path, required=True)
    args = parser.parse_args()
    connectors = args.connectors
    pipelines = {name: ProcessingPipeline.from_yaml((args.export / "pipelines" / f"{name}.yml").read_text())
                 for name in ["splunk", "elastic", "sentinel"]}
    backends = {
        "splunk": [("splunk", SplunkBackend(pipelines["splunk"]))],
        "elastic_single": [("lucene", LuceneBackend(pipelines["elastic"])), ("esql", ESQLBackend(pipelines["elastic"]))],
        "elastic_correlation": [("esql", ESQLBackend(pipelines["elastic"]))],
        "sentinel": [("kusto", KustoBackend(pipelines["sentinel"]))],
    }
    rules = load_rules(args.export)
    if not rules:
        fail(f"no Sigma rules in {args.export / 'rules'}")
    for siem in ["splunk", "elastic", "sentinel"]:
        (connectors / siem / "detections").mkdir(parents=True, exist_ok=True)
        for stale in (connectors / siem / "detections").glob("aiwarden_*"):
            stale.unlink()
    for rule in rules:
        rule["siem"] = {}
        for siem in ["splunk", "elastic", "sentinel"]:
            key = siem if siem != "elastic" else ("elastic_correlation" if rule["correlation"] else "elastic_single")
            candidates = backends[key]
            result = None
            for position, (target, backend) in enumerate(candidates):
                try:
                    if position + 1 < len(candidates):
                        if siem == "elastic" and "|re" in rule["source"]:
                            raise SigmaFeatureNotSupportedByBackendError("regular expression")
                        queries = backend.convert(SigmaCollection.from_yaml(rule["source"]))
                        result = (" ".join(l.strip() for l in queries[0].splitlines() if l.strip()), target, "generated")
                    else:
                        result = convert(rule, backend, target, connectors, siem)
                    break
                except (SigmaFeatureNotSupportedByBackendError, SigmaConversionError, NotImplementedError):
                    continue
            query, language, origin = result
            rule["siem"][siem] = {"language": language, "origin": origin, "query": query}
            if origin == "generated":
                path = connectors / siem / "detections" / f"{rule['name']}.{EXTENSIONS[language]}"
                path.write_text(query + "\n")
    splunk_pack(rules, connectors)
    (connectors / "elastic/detection_rules").mkdir(parents=True, exist_ok=True)
    elastic_pack(rules, connectors)
    workbook = governance(connectors)
    deploy_path = connectors / "sentinel/azuredeploy.json"
    deploy = json.loads(deploy_path.read_text())
    generated_types = {"Microsoft.OperationalInsights/workspaces/providers/alertRules",
                       "Microsoft.OperationalInsights/workspaces/savedSearches", "Microsoft.Insights/workbooks"}
    deploy["resources"] = [r for r in deploy["resources"] if r["type"] not in generated_types]
    deploy["resources"] += sentinel_resources(rules, connectors) + [workbook]
    deploy_path.write_text(json.dumps(deploy, indent=2) + "\n")
    index = [{k: rule[k] for k in ["name", "id", "title", "level", "atlas", "correlation", "group_by", "timespan", "file"]}
             | {"siem": {s: {"language": c["language"], "origin": c["origin"]} for s, c in rule["siem"].items()}}
             for rule in rules]
    (connectors / "sigma/conversions.json").write_text(json.dumps(index, indent=2) + "\n")
    for rule in rules:
        origins = ", ".join(f"{s} {c['language']} {c['origin'].split(' (')[0]}" for s, c in rule["siem"].items())
        print(f"{rule['name']}: {origins}")


if __name__ == "__main__":
    main()
