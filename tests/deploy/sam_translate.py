"""Prints infra/template.yaml translated to plain CloudFormation (JSON), as SAM deploys it.

Runs under .venv-sam's Python (aws-sam-translator): `.venv-sam/bin/python sam_translate.py TEMPLATE`.
Local CodeUri/ContentUri become placeholder S3 URIs, as `sam validate` does; no AWS call is made.
"""

import json
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The translator asks for AWS managed policy ARNs only for names it does not know."""

    def load(self) -> dict:
        return {}


def main(path: str) -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "ap-northeast-2")
    with open(path) as handle:
        document = yaml_parse(handle.read())
    for resource in document["Resources"].values():
        properties = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = f"s3://placeholder/{key}"
    json.dump(transform(document, {}, NoManagedPolicies()), sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
