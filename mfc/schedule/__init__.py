"""Schedules and triggers of deployed flows: EventBridge schedule expressions
(:mod:`mfc.schedule.expressions`), rule names (:mod:`mfc.schedule.names`), the execution input
(:mod:`mfc.schedule.inputs`) and the rules and Scheduler schedules (:mod:`mfc.schedule.deploy`)."""
