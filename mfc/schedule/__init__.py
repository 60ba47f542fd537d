"""Production flows that run by themselves: schedules, event triggers and upstream-finish
triggers, as Amazon EventBridge rules (and Scheduler schedules) targeting a flow's state machine."""
