"""Flow-level decorators: @project, @schedule, @pypi_base, and a step's @pypi."""

from mfc import FlowSpec, current, project, pypi, pypi_base, schedule, step


@project(name="compat")
@schedule(daily=True)
@pypi_base(packages={"requests": "2.32.3"})
class ProjectCompatFlow(FlowSpec):
    @pypi(packages={"six": "1.16.0"})
    @step
    def start(self):
        self.project_name = getattr(current, "project_name", None)
        self.branch_name = getattr(current, "branch_name", None)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ProjectCompatFlow()
