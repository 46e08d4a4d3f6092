"""The SDK's version and the API version it speaks.

The SDK's ``major.minor`` is the service API's ``major.minor`` (the ``info.version`` of the
service's OpenAPI document); the patch number moves on its own for SDK-only fixes.
"""

__version__ = "0.1.0"
API_VERSION = "0.1"
