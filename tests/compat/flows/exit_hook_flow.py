"""@exit_hook: success hooks after a successful run, error hooks after a failed one; a failing
hook is reported and does not change the run's status."""

import os

from mfc import FlowSpec, exit_hook, step


def notify_success(run=None):
    print(f"HOOK success {run.successful if run is not None else None}")


def notify_error(run=None):
    print(f"HOOK error {run.successful if run is not None else None}")


def broken_hook():
    raise RuntimeError("hook broke")


def plain_hook():
    print("HOOK plain")


@exit_hook(on_success=[notify_success, broken_hook, plain_hook], on_error=[notify_error, plain_hook])
class ExitHookFlow(FlowSpec):
    @step
    def start(self):
        if os.environ.get("COMPAT_FAIL") == "1":
            raise ValueError("failing on purpose")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ExitHookFlow()
