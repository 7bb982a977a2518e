"""The one exception type for errors a user can cause (bad files, bad labels, bad arguments)."""


class HandposeError(ValueError):
    """Raised for user-caused errors; the message names the file or record and what was expected."""
