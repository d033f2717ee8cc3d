"""aggregator: follow feeds, keep every entry once, write documents, republish one merged feed."""

__version__ = "0.3.0"
