import json

from metaflow import FlowSpec, IncludeFile, JSONType, Parameter, current, step


def default_run_name(context):
    """Callable default: evaluated once, when the run starts."""
    return f"{context.flow_name.lower()}-by-{context.parameter_name}"


class TrainConfigFlow(FlowSpec):
    """Parameters of every kind, a JSON config and an included file."""

    alpha = Parameter("alpha", help="Learning rate", default=0.01)
    epochs = Parameter("epochs", help="Number of epochs", default=10)
    model = Parameter("model", help="Model name", default="linear")
    shuffle = Parameter("shuffle", help="Shuffle the data", default=False)
    config = Parameter("config", help="Model config as JSON", type=JSONType, default='{"layers": [4]}')
    notes = IncludeFile("notes", help="Notes to attach to the run", default="notes.txt")
    run_name = Parameter("run_name", help="A name for the run", default=default_run_name)

    @step
    def start(self):
        print(f"alpha is {self.alpha:f}")
        self.lines = self.notes.splitlines()
        self.layer_total = sum(self.config["layers"])
        self.schedule = [round(self.alpha * 0.5 ** e, 6) for e in range(self.epochs)]
        self.ran_as = [current.flow_name, current.step_name, current.retry_count, current.is_running_flow]
        self.pathspec_ok = current.pathspec == "/".join(
            [current.flow_name, current.run_id, current.step_name, current.task_id])
        self.namespace_ok = current.namespace == "user:" + current.username
        self.next(self.train)

    @step
    def train(self):
        self.summary = json.dumps({"model": self.model, "shuffle": self.shuffle, "epochs": self.epochs,
                                   "final_lr": self.schedule[-1]}, sort_keys=True)
        self.next(self.end)

    @step
    def end(self):
        self.kinds = {name: type(getattr(self, name)).__name__
                      for name in ("alpha", "epochs", "model", "shuffle", "config", "notes", "run_name")}


if __name__ == "__main__":
    TrainConfigFlow()
