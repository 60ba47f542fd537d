"""Records where its steps ran (interpreter, platform, uid, package versions) and a result."""

import importlib.metadata
import os
import platform
import sys

from mfc import FlowSpec, Parameter, environment, step


def environment_facts() -> dict:
    try:
        with open("/etc/os-release") as fh:
            os_release = dict(line.rstrip("\n").split("=", 1) for line in fh if "=" in line)
    except OSError:
        os_release = {}
    return {
        "version": sys.version,
        "platform": platform.platform(),
        "executable": sys.executable,
        "uid": os.getuid(),
        "gid": os.getgid(),
        "home": os.path.expanduser("~"),
        "os_codename": os_release.get("VERSION_CODENAME", ""),
        "packages": {name: importlib.metadata.version(name) for name in ("cloudpickle", "mfc", "click")},
        "flow_file": os.path.abspath(__file__),
        "unbuffered": os.environ.get("PYTHONUNBUFFERED"),
        "greeting": os.environ.get("PARITY_GREETING"),
    }


class ParityFlow(FlowSpec):
    n = Parameter("n", default=10)

    @step
    def start(self):
        self.start_facts = environment_facts()
        self.numbers = list(range(self.n))
        print(f"parity start on {sys.executable}")
        print("parity stderr line", file=sys.stderr)
        self.next(self.square, foreach="numbers")

    @step
    def square(self):
        self.value = self.input * self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.value for i in inputs)
        self.next(self.end)

    @environment(vars={"PARITY_GREETING": "hello from @environment"})
    @step
    def end(self):
        self.end_facts = environment_facts()
        print(f"total {self.total}")


if __name__ == "__main__":
    ParityFlow()
