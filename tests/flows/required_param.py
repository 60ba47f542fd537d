"""A required parameter; a step that tries to assign a parameter when --assign is given."""

from mfc import FlowSpec, Parameter, step


class RequiredFlow(FlowSpec):
    needed = Parameter("needed", required=True, type=int, help="A number you must give.")
    assign = Parameter("assign", default=False)

    @step
    def start(self):
        self.got = self.needed
        self.next(self.end)

    @step
    def end(self):
        if self.assign:
            self.needed = 99  # ASSIGN-PARAM
        self.final = self.needed


if __name__ == "__main__":
    RequiredFlow()
