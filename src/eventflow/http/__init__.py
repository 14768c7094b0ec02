"""HTTP front ends for eventflow: Lambda's REST API over an App's handlers.

:class:`LambdaAPI` is a plain ASGI 3 application; serve it with uvicorn (or mount it in
any ASGI framework) while the App runs, and point boto3, the AWS CLI or any AWS SDK at it
with ``endpoint_url``. Importing ``eventflow`` alone never imports this package.
"""

from __future__ import annotations

from ._lambda_api import DEFAULT_BODY_TIMEOUT as DEFAULT_BODY_TIMEOUT
from ._lambda_api import DEFAULT_MAX_BODY_MEMORY as DEFAULT_MAX_BODY_MEMORY
from ._lambda_api import DEFAULT_TIMEOUT_SECONDS as DEFAULT_TIMEOUT_SECONDS
from ._lambda_api import MAX_ASYNC_PAYLOAD_BYTES as MAX_ASYNC_PAYLOAD_BYTES
from ._lambda_api import MAX_SYNC_PAYLOAD_BYTES as MAX_SYNC_PAYLOAD_BYTES
from ._lambda_api import LambdaAPI as LambdaAPI
from ._lambda_api import LambdaAPIStatistics as LambdaAPIStatistics
from ._sigv4 import SignatureRejected as SignatureRejected
from ._sigv4 import SigV4Verifier as SigV4Verifier

__all__ = (
    "LambdaAPI",
    "LambdaAPIStatistics",
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_MAX_BODY_MEMORY",
    "SigV4Verifier",
    "SignatureRejected",
    "MAX_ASYNC_PAYLOAD_BYTES",
    "MAX_SYNC_PAYLOAD_BYTES",
    "DEFAULT_TIMEOUT_SECONDS",
)

# reprs and docs name the public module, not the private one a class is defined in
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = "eventflow.http"
del _name, _obj
