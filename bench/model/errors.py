"""The one error every reader of the data model raises: a report (or any document) that cannot be read or does not
follow its schema. Its own module so that the lowest readers (the raw-sample codec, strict JSON) raise it without
importing the model they sit under."""


class ReportError(ValueError):
    """A report that cannot be read or does not follow the schema; the message is one line meant for a person."""
