"""Building the chat request for one task and one piece of a document."""

from __future__ import annotations

import json
import re
from typing import Any

from fedinf.documents import Document
from fedinf.tasks.spec import TaskSpec

_PLACEHOLDER = re.compile(r"\{(document|name|pages|fields)\}")


def render(template: str, values: dict[str, str]) -> str:
    """Replace ``{document}``, ``{name}``, ``{pages}``, ``{fields}``; every other brace stays as written."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def messages(spec: TaskSpec, doc: Document, text: str, *, names: list[str] | None = None) -> list[dict[str, str]]:
    """System prompt, few-shot examples as user/assistant turns, then the document (or chunk) in the template."""
    fields = ", ".join(names if names is not None else spec.property_names())
    out = [{"role": "system", "content": spec.system}]
    for ex in spec.examples:
        out.append({"role": "user", "content": render(spec.prompt, {"document": ex.input, "name": "example",
                                                                    "pages": "1", "fields": fields})})
        out.append({"role": "assistant", "content": json.dumps(ex.output, ensure_ascii=False)})
    prompt = render(spec.prompt, {"document": text, "name": doc.name, "pages": str(len(doc.pages)),
                                  "fields": fields})
    if "{document}" not in spec.prompt:
        prompt += "\n\n" + text
    out.append({"role": "user", "content": prompt})
    return out


def chat_body(spec: TaskSpec, doc: Document, text: str, *, target: str,
              schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """The OpenAI chat body: constrained JSON output (``schema``, default the task's), and the task's data class
    declared to the gateway."""
    schema = schema or spec.output_schema
    return {
        "model": target,
        "messages": messages(spec, doc, text, names=list(schema["properties"])),
        "max_tokens": spec.max_tokens,
        "temperature": spec.temperature,
        "response_format": {"type": "json_schema",
                            "json_schema": {"name": spec.name.replace("-", "_"), "schema": schema,
                                            "strict": True}},
        "fedinf": {"data_class": spec.policy.min_data_class.label,
                   **({"timeout_s": spec.timeout_s} if spec.timeout_s else {}),
                   **({"max_reasks": spec.max_reasks} if spec.max_reasks is not None else {})},
    }
