"""@exit_hook applied twice: the hooks of the decorator nearest the class run first."""

import os

from mfc import FlowSpec, exit_hook, step


def inner_hook():
    print("HOOK inner")


def outer_hook():
    print("HOOK outer")


def inner_error():
    print("HOOK inner error")


@exit_hook(on_success=[outer_hook], on_error=[outer_hook])
@exit_hook(on_success=[inner_hook, "outer_hook"], on_error=[inner_error])
class ExitHookTwiceFlow(FlowSpec):
    @step
    def start(self):
        if os.environ.get("COMPAT_FAIL") == "1":
            raise ValueError("failing on purpose")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ExitHookTwiceFlow()
