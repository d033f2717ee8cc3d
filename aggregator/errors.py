"""The one exception hierarchy; library errors are wrapped into it at each step's boundary."""


class AggregatorError(Exception):
    """Base of every error this program reports to the user on purpose."""


class ConfigError(AggregatorError):
    """config.yaml is unreadable or wrong; the message names the file, the key and the problem."""


class FetchError(AggregatorError):
    """A source could not be fetched (network, HTTP status, limits)."""


class ParseError(AggregatorError):
    """A fetched body is not a feed feedparser can recover anything from."""


class StoreError(AggregatorError):
    """The database is unusable: corrupt, foreign, locked by another instance or read-only."""


class OutputError(AggregatorError):
    """A document or merged feed could not be written (disk full, read-only folder)."""


class OpmlError(AggregatorError):
    """An OPML file cannot be read as a list of subscriptions."""
