"""Parameters of every kind, IncludeFile and JSONType; parameters are read-only in steps."""

from mfc import FlowSpec, IncludeFile, JSONType, Parameter, step


class ParamsCompatFlow(FlowSpec):
    """Parameters of every type."""

    text = Parameter("text", default="hi", help="Some text")
    count = Parameter("count", default=3, help="An int")
    ratio = Parameter("ratio", default=0.5, help="A float")
    verbose = Parameter("verbose", default=False, help="A bool")
    config = Parameter("config", type=JSONType, default='{"lr": 0.1}', help="JSON")
    doc = IncludeFile("doc", default="notes.txt", help="A text file")
    raw = IncludeFile("raw", is_text=False, default="notes.txt", help="The same file, as bytes")
    assign = Parameter("assign", default="no", help="'yes' assigns to a parameter without catching")

    @step
    def start(self):
        self.seen = {"text": self.text, "count": self.count, "ratio": self.ratio, "verbose": self.verbose,
                     "config": self.config, "doc": self.doc, "raw": self.raw}
        self.types = {name: type(value).__name__ for name, value in self.seen.items()}
        try:
            self.count = 100
            self.assignment_error = None
        except Exception as exc:
            self.assignment_error = str(exc)
            self.is_attribute_error = isinstance(exc, AttributeError)
        self.count_after_assignment = self.count
        if self.assign == "yes":
            self.text = "changed"
        self.next(self.end)

    @step
    def end(self):
        self.count_in_end = self.count
        self.doc_lines = self.doc.splitlines()


if __name__ == "__main__":
    ParamsCompatFlow()
