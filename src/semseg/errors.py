"""The one exception type for mistakes a user can make and fix."""


class SemsegError(Exception):
    """A user-caused problem (config, data, paths, checkpoints).

    The message names the file or key, says what is wrong and how to fix it. The CLI prints
    it as one line and exits with code 2.
    """
