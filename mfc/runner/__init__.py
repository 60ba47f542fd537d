"""Running flows: the task spec, the task entrypoint, executors and the orchestrator."""
