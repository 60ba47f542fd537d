"""@exit_hook on Step Functions: a foreach that fails when ``--fail`` is given; the hooks (two
@exit_hook decorators: the lower one's hooks first) write what they saw of the run into the
run's S3 root, and one hook always raises (reported, the outcome unchanged)."""

from mfc import S3, FlowSpec, Parameter, exit_hook, step


def _mark(name, run):
    with S3(run=run) as s3:
        s3.put(f"hooks/{name}", f"{run.pathspec} successful={run.successful} finished={run.finished}")
    print(f"HOOK {name} {run.successful}")


def on_success(run=None):
    _mark("success", run)


def on_error(run=None):
    _mark("error", run)


def broken():
    raise RuntimeError("hook broke")


def last():
    print("HOOK last")


@exit_hook(on_success=[last], on_error=[last])
@exit_hook(on_success=[on_success, broken], on_error=[on_error, broken])
class HookedFlow(FlowSpec):
    fail = Parameter("fail", default=False, type=bool)

    @step
    def start(self):
        self.items = [1, 2]
        self.next(self.body, foreach="items")

    @step
    def body(self):
        if self.fail and self.input == 2:
            raise ValueError("failing on purpose")
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    HookedFlow()
