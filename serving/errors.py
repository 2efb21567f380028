"""What a page shows when the model service (Ray Serve) cannot answer: sentences, never a traceback."""


class ServiceError(Exception):
    """The model service could not give an answer; the message says so in words a student understands."""


class ServiceUnavailable(ServiceError):
    """No replica took the request in time, after retries: the service is down, restarting or unreachable."""


class ServiceTimeout(ServiceError):
    """The request was taken but the service went silent: no progress and no heartbeat for too long."""


class Stopped(Exception):
    """Raised inside a replica's work at its next callback once its caller has gone (cancelled or timed out)."""
