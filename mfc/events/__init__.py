"""Production flows that run by themselves: schedules, event triggers and upstream-finish
triggers, as Amazon EventBridge rules (and Scheduler schedules) targeting a flow's state machine:
schedule expressions (:mod:`.expressions`), rule names (:mod:`.names`), the execution input
(:mod:`.inputs`), schedules (:mod:`.deploy`), triggers (:mod:`.triggers`, :mod:`.trigger_deploy`)."""
