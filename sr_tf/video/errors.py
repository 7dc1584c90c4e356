"""The one error type of the video pipeline."""


class VideoError(Exception):
    """A video that cannot be processed; the message is one line that names the file and the problem."""
