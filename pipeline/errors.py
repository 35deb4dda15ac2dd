"""The pipeline's exception base: raised for configuration and environment errors, never for bad data."""


class InterceptorError(Exception):
    """Base of every error this package raises on purpose."""


class BrokerError(InterceptorError):
    """The broker could not be started, reached or prepared."""


class MessageTooLargeError(InterceptorError):
    """A message to publish cannot be made to fit ``max_action_bytes`` even with its bounded lists emptied.

    Lists are shrunk to fit, so this means a part that is not bounded (reasons, an error sentence) grew
    too large: a programmer error, not bad input.
    """
