"""Tasks: declarative workloads (prompt + output schema + policy + extractors + validators) and their runners.

    registry = TaskRegistry.from_config(config)
    runner = TaskRunner(GatewayClient(gateway))
    result = await runner.run_bytes(registry.get("invoice"), pdf_bytes, name="a.pdf")
    summary = await run_batch(runner, registry.get("invoice"), paths, "results.jsonl", concurrency=2)
"""

from fedinf.tasks.batch import BatchSummary, ResultLog, process_document, run_batch
from fedinf.tasks.builtin import BUILTIN, INVOICE, UTILITY_BILL
from fedinf.tasks.registry import TaskRegistry
from fedinf.tasks.runner import ChatClient, GatewayClient, TaskResult, TaskRunner
from fedinf.tasks.spec import TaskSpec

__all__ = [
    "BUILTIN", "INVOICE", "UTILITY_BILL", "BatchSummary", "ChatClient", "GatewayClient", "ResultLog", "TaskRegistry",
    "TaskResult", "TaskRunner", "TaskSpec", "process_document", "run_batch",
]
