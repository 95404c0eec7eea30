"""The project's exception tree; edges (web handlers, ``cli.py``) map these to codes.

    ModelopsError
    ├── ConfigError          bad config.json: names the key            -> exit 2
    ├── UsageError           a command's argument or input file cannot be used  -> exit 2
    ├── SchemaValueError     one value does not fit its declared feature (schema.py)  -> quarantine / HTTP 400
    ├── DataError            no usable training data                   -> exit 1
    ├── UserModelError       train.module did not give a usable model: the run fails, nothing published
    ├── StoreError           model store could not be read or written  -> exit 1
    ├── ReproduceError       what a version's lineage names is gone or damaged -> exit 1
    │   └── LockBusyError    another retrain holds the pipeline lock   -> exit 1
    ├── ServingError         TF Serving answered badly or not at all
    │   ├── ServingUnavailable  connection refused / reset             -> HTTP 503
    │   │   └── ModelNotLoaded  serving is up, no version AVAILABLE yet   -> HTTP 503
    │   ├── ServingTimeout      no answer in time                      -> HTTP 504
    │   └── ServingHTTPError    an HTTP error status with its message
    ├── VerifyError          serving disagrees with the promoted model -> rollback
    └── ServableError        the local serving server refuses a request: carries TF Serving's
                             status code name -> its HTTP or gRPC status (localserving/rest.py, grpc_api.py)

A candidate rejected by the gate is an outcome, not an exception.
"""


class ModelopsError(Exception):
    """Base of every error the project raises on purpose."""


class ConfigError(ModelopsError):
    """config.json is unreadable or a key is unknown, mistyped or out of range."""


class UsageError(ModelopsError):
    """A command's argument or input file cannot be used; the message says what and how to fix it."""


class SchemaValueError(ModelopsError):
    """One raw value does not fit its declared feature or label; the message names both and how to fix it."""

    def __init__(self, feature: str, value: object, reason: str):
        super().__init__(f"{feature} {reason}")
        self.feature = feature
        self.value = value
        self.reason = reason


class DataError(ModelopsError):
    """No usable training data."""


class UserModelError(ModelopsError):
    """``train.module`` did not import, raised, or built something that is not a fitting Keras model."""


class StoreError(ModelopsError):
    """The model store could not be read or written."""


class ReproduceError(ModelopsError):
    """``reproduce N``: a batch, the config copy or the metrics its lineage names is gone or damaged."""


class LockBusyError(StoreError):
    """Another writer holds the model store lock."""


class ServingError(ModelopsError):
    """TF Serving could not answer the request."""


class ServingUnavailable(ServingError):
    """TF Serving refused or dropped the connection."""


class ModelNotLoaded(ServingUnavailable):
    """TF Serving answers but has no AVAILABLE version of the model yet."""


class ServingTimeout(ServingError):
    """TF Serving did not answer in time."""


class ServingHTTPError(ServingError):
    """TF Serving answered with an HTTP error status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class VerifyError(ModelopsError):
    """The served version does not answer like the model that was promoted."""


class ServableError(ModelopsError):
    """The local serving server refuses a request; ``code`` is the TF status name (``NOT_FOUND``, ...)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message
