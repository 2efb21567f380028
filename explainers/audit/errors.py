"""The one error an audit's input raises: its message is meant for the person who gave the data."""


class DatasetError(ValueError):
    """The dataset (or one part of it) cannot be used; the message says why and what to do."""
