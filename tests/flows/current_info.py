"""Records what `current` says inside tasks (and outside, at import time)."""

from mfc import FlowSpec, current, retry, step

AT_IMPORT = current.is_running_flow


def snapshot():
    return {
        "flow_name": current.flow_name, "run_id": current.run_id, "step_name": current.step_name,
        "task_id": current.task_id, "retry_count": current.retry_count, "pathspec": current.pathspec,
        "username": current.username, "is_running_flow": current.is_running_flow,
    }


class CurrentFlow(FlowSpec):
    @step
    def start(self):
        self.info_start = snapshot()
        self.at_import = AT_IMPORT
        self.next(self.again)

    @retry(times=1, minutes_between_retries=0)
    @step
    def again(self):
        if current.retry_count == 0:
            raise RuntimeError("first attempt fails on purpose")
        self.info_again = snapshot()
        self.next(self.end)

    @step
    def end(self):
        self.info_end = snapshot()


if __name__ == "__main__":
    CurrentFlow()
