"""A heterogeneous job's stored task: a SkyPilot job group (task.plan_group makes it).

It is the group's header (name, execution, primary_tasks) with `_metadata` and the
component tasks in order under "job_group"; SkyPilot's multi-document YAML of it is the
header, then a task per component (sky/utils/dag_utils.py), each named as
runtime.het.group_task_name says (its nodes are found by it). Plain dicts, no imports: the
client, the launcher and the commands read it.
"""

from __future__ import annotations

HEADER = ("name", "execution", "primary_tasks")


def group_tasks(task: dict) -> list[dict] | None:
    """A job group's component tasks, in order (None: a task of its own)."""
    return task.get("job_group")


def group_documents(task: dict) -> list[dict]:
    """A job group as SkyPilot's multi-document YAML has it: the header, then its tasks."""
    return [{k: v for k, v in task.items() if k in HEADER}] + list(task["job_group"])
