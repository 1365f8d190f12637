"""The one exception type for mistakes a user can make and fix."""


class SemsegError(Exception):
    """A user-caused problem (config, data, paths, checkpoints).

    The message names the file or key, says what is wrong and how to fix it. The CLI prints
    it as one line and exits with code 2.
    """


class DataProblem(SemsegError):
    """A problem with one file or split of a dataset; `kind` groups them in `data check`.
    A `warning` (e.g. a mask with no image, which nothing reads) is reported but stops
    nothing."""

    def __init__(self, path: object, kind: str, detail: str, warning: bool = False) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = str(path)
        self.kind = kind
        self.detail = detail
        self.warning = warning

    def __reduce__(self):  # crosses DataLoader worker processes intact
        return (DataProblem, (self.path, self.kind, self.detail, self.warning))
