"""Parse Prometheus text exposition from stdin with the prometheus_client library's parser
and print what it read as JSON: {"types": {family: type}, "samples": [[name, labels, value]]}.

Used by tests/observability_metrics.rs, so that the gateway's /metrics is read by a parser
no one here wrote. Exits non-zero (with the parser's error) when the text does not parse.
"""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

text = sys.stdin.read()
types = {}
samples = []
for family in text_string_to_metric_families(text):
    types[family.name] = family.type
    for sample in family.samples:
        samples.append([sample.name, sample.labels, sample.value])
json.dump({"types": types, "samples": samples}, sys.stdout)
