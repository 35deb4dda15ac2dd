"""The pipeline's exception base: raised for configuration and environment errors, never for bad data."""


class InterceptorError(Exception):
    """Base of every error this package raises on purpose."""


class BrokerError(InterceptorError):
    """The broker could not be started, reached or prepared."""
